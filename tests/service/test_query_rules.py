"""The one rule of an unusable query, which the API's 422 and the pages' sentences both read."""

from __future__ import annotations

from dealscore_service.query_rules import QueryProblem, query_problems, undecodable_names


def test_each_parameter_breaks_at_most_one_rule_in_the_order_the_url_names_them() -> None:
    raw = b"zz=1&team=a&owner=%FF&team=b&owner=c&stage=x"
    assert query_problems(raw, {"team", "owner", "stage"}) == [
        QueryProblem("unknown", "zz", ("1",)),
        QueryProblem("repeated", "team", ("a", "b")),
        QueryProblem("not_utf8", "owner", ("\ufffd", "c")),  # not UTF-8 wins over repeated: its text is lost
    ]



def test_an_unknown_name_is_only_a_problem_when_the_names_are_known() -> None:
    assert query_problems(b"anything=1", None) == []
    assert query_problems(b"anything=1", ()) == [QueryProblem("unknown", "anything", ("1",))]
    assert query_problems(b"", ()) == []


def test_a_name_that_is_not_utf8_is_named_as_the_request_reads_it() -> None:
    assert undecodable_names(b"%E9t%E9=1&ok=%C3%A9") == ["\ufffdt\ufffd"]
    assert query_problems(b"%E9=1", {"x"}) == [QueryProblem("not_utf8", "\ufffd", ("1",))]
    assert query_problems(b"a+b=%C3%A9", {"a b"}) == []
