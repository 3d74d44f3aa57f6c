"""Values and columns: coercions per value and per Arrow column, the email and phone normalisers."""
