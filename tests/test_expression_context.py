"""The expression context a command's effects read (engine/core/decide.py) is carried across
the data events of one command instead of rebuilt: it must stay the context a fresh build
gives, names and values."""
from __future__ import annotations

from typing import Any

from engine.core import decide
from tests.api_support import COMPLAINT


def test_the_names_an_instance_sets_over_its_data_are_the_ones_the_carried_context_keeps_apart(engine: Any) -> None:
    inst = engine.start("complaint", "liu_fang", COMPLAINT)
    proc = engine.library.get("complaint")
    ctx = decide.expression_context(proc, inst.with_(data={}), engine.clock.now(), "liu_fang", None, engine.org)
    assert set(ctx) == decide._INSTANCE_NAMES


def test_fee1_a_chain_of_computed_charges_reads_each_value_as_computed_before_it(engine: Any) -> None:
    """FEE-1's start computes the water charge, then the total from it, then whether there
    is anything to pay: each compute reads the one before, typed (money as Decimal)."""
    data = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "period": "2025-10",
            "management_fee": "180.00", "water_usage": 12, "water_unit_price": "3.50", "service_fees": "0.00",
            "other_fees": "0.00", "payment_method": "bank_debit"}
    inst = engine.start("fee_cycle", "lin_cai", data)
    fresh = decide.expression_context(engine.library.get("fee_cycle"), inst, engine.clock.now(), "lin_cai", None,
                                      engine.org)
    assert (inst.data["water_fee"], inst.data["amount_due"]) == ("42.00", "222.00")
    assert str(fresh["amount_due"]) == "222.00" and inst.status == "active"  # something to pay: it runs on
