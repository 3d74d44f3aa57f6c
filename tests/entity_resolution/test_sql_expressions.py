"""Expressions written once for every entity-resolution step, checked on the warehouse that runs them."""
from __future__ import annotations

import pytest

from entity_resolution.matcher import SQL_EXPRESSIONS
from transform.email_normalizer import GMAIL_DOMAINS


@pytest.mark.parametrize("email, expected", [
    ("j.o.h.n+sales@gmail.com", "john@gmail.com"),
    ("John.Smith@googlemail.com", "John.Smith@googlemail.com".replace("John.Smith", "JohnSmith").replace("googlemail", "gmail")),
    ("john.smith+x@acme.com", "john.smith+x@acme.com"),
    ("first.last@outlook.com", "first.last@outlook.com"),
    ("+only@gmail.com", None),
])
def test_gmail_canonical(warehouse, email, expected):
    """Dots and +tags are ignored only on gmail.com and googlemail.com (the steps apply it to those domains only);
    an address with nothing before its +tag has no canonical form."""
    (row,) = warehouse.query(f"SELECT {SQL_EXPRESSIONS['gmail_canonical'].format('@email')} AS canonical",
                             {"email": email})
    assert (row["canonical"] if email.rpartition("@")[2] in GMAIL_DOMAINS else email) == expected
