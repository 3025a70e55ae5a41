"""core.canonical's `marked`/`unmarked`: where each member of an object stands in its
canonical bytes, found in one serialization of the whole, whose bytes are `serialize`'s;
a member given as bytes (orjson.Fragment) goes in as it is."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from core.canonical import marked, serialize, unmarked

# JSON-like values, strings with control characters (a NUL among them) and quotes included
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["\0", '"\0"', "[\0,", ",\0]", '"},"state":'],
)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
MEMBERS = st.dictionaries(TEXT, VALUES, max_size=8)


@settings(max_examples=300, deadline=None)
@given(members=MEMBERS, around=st.dictionaries(TEXT, VALUES, max_size=3))
def test_unmarked_gives_the_bytes_and_where_each_member_stands(
    members: dict[str, Any], around: dict[str, Any]
) -> None:
    document = {**around, "members": members}
    expected = serialize(document)
    data, spans = unmarked(
        serialize({**document, "members": {k: marked(v) for k, v in members.items()}})
    )
    assert data == expected
    assert [data[a:b] for a, b in spans] == [
        serialize({"v": members[k]})[5:-1] for k in sorted(members)
    ]


@settings(max_examples=200, deadline=None)
@given(members=MEMBERS)
def test_members_given_as_bytes_go_in_as_they_are(members: dict[str, Any]) -> None:
    values = {k: serialize({"v": v})[5:-1] for k, v in members.items()}
    marks = {k: marked(orjson.Fragment(value)) for k, value in values.items()}
    data, spans = unmarked(serialize(marks))
    assert data == serialize(members)
    assert [data[a:b] for a, b in spans] == [values[k] for k in sorted(values)]
