"""The HTTP entry of every function: request validation and the handler that answers JSON."""
