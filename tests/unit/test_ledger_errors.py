"""Issue 21 item 6: only Azure's errors mean "ledger unavailable"; a bug stays a bug (an internal error,
recorded once, never an Event Grid redelivery loop)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceModifiedError, ServiceRequestError

from autoheal.remediation.ledger import Ledger, LedgerConflict, LedgerUnavailable


def _raise(exc: Exception):
    def call():
        raise exc

    return call


def test_an_unreachable_table_is_unavailable():
    with pytest.raises(LedgerUnavailable, match="ServiceRequestError"):
        Ledger._guard(_raise(ServiceRequestError("connection refused")))


def test_a_precondition_failure_is_a_conflict():
    with pytest.raises(LedgerConflict):
        Ledger._guard(_raise(ResourceModifiedError("etag mismatch")))


@pytest.mark.parametrize("bug", [TypeError("unhashable type"), KeyError("PartitionKey"), AttributeError("x")])
def test_a_bug_is_not_turned_into_ledger_unavailable(bug):
    with pytest.raises(type(bug)):
        Ledger._guard(_raise(bug))


def test_a_bug_in_a_query_is_not_turned_into_ledger_unavailable():
    class Table:  # plain data, not an SDK client: a query whose paging code has a bug
        def query_entities(self, query):
            raise TypeError("bad filter type")

    with pytest.raises(TypeError):
        Ledger(Table()).records_for(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/a"
        )
