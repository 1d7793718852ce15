"""Checks of Baton's own for schemathesis (.ci/schemathesis)."""

import schemathesis


@schemathesis.check
def valid_data_refused_only_by_a_rule(ctx, response, case):
    """A 422 to schema-valid data must name the domain rule that refused it.

    positive_data_acceptance accepts 422 (the contract's answer for a
    well-formed command the domain refuses); this keeps that narrow: a 422
    without a rule would be a refusal of shape the document does not state.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code != 422:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError("a 422 whose body is not JSON")
    if not isinstance(body, dict) or not body.get("rule"):
        raise AssertionError(f"valid data refused with a 422 that names no rule: {body!r}")
    return None
