"""PDFleetOptions: prefill/decode disaggregation settings of a RoutingConfig (docs/pd.md).

With ``num_prefill`` and ``num_decode`` both ≥ 1 the fleet is that many prefill workers followed by that
many decode workers (worker index i < num_prefill is ``prefill_i``, the rest ``decode_j``) behind SMG in
``--pd-disaggregation`` mode. ``prefill_args`` / ``decode_args`` are extra server flags of one role
(simulator flags such as ``--sim-kv-link-gbps`` for ``backend='sim'``, SGLang flags otherwise); the
policies of each leg are ``router.prefill_policy`` / ``router.decode_policy`` (default: the routing
policy).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import StrictModel

__all__ = ["PDFleetOptions", "PDRole"]

PDRole = Literal["prefill", "decode"]


class PDFleetOptions(StrictModel):
    """The PD part of a fleet (RoutingConfig extends it)."""

    num_prefill: int = Field(default=0, ge=0, le=4096, description="PD: prefill workers (0 = no PD)")
    num_decode: int = Field(default=0, ge=0, le=4096, description="PD: decode workers (0 = no PD)")
    prefill_args: list[str] = Field(default_factory=list, description="PD: extra server flags of prefill workers")
    decode_args: list[str] = Field(default_factory=list, description="PD: extra server flags of decode workers")

    @property
    def is_pd(self) -> bool:
        """True when the fleet is disaggregated (prefill and decode workers)."""
        return self.num_prefill > 0 or self.num_decode > 0

    def pd_role(self, index: int) -> PDRole:
        """The role of fleet worker ``index`` (prefill workers come first)."""
        return "prefill" if index < self.num_prefill else "decode"

    def pd_server_id(self, index: int) -> str:
        """``prefill_i`` / ``decode_j`` for fleet worker ``index``."""
        role = self.pd_role(index)
        return f"{role}_{index if role == 'prefill' else index - self.num_prefill}"

    def pd_flags(self, index: int, bootstrap_port: int | None) -> list[str]:
        """Server flags of fleet worker ``index``: its ``--disaggregation-mode``, a prefill's
        ``--disaggregation-bootstrap-port`` (when given) and the role's extra flags."""
        role = self.pd_role(index)
        flags = ["--disaggregation-mode", role]
        if role == "prefill" and bootstrap_port is not None:
            flags += ["--disaggregation-bootstrap-port", str(bootstrap_port)]
        return flags + list(self.prefill_args if role == "prefill" else self.decode_args)

    def pd_problem(self, values: dict[str, Any]) -> str | None:
        """Why this PD setting cannot run (one line naming the field and the fix), else None.

        ``values``: ``backend``, ``tp_size``, ``num_gpus``, ``num_gpus_set`` (given explicitly),
        ``implementation`` (the resolved router), ``router_impl``, ``routing_policy`` and ``smg_policy``
        (whether it is one of SMG's).
        """
        if not self.is_pd:
            return None
        if self.num_prefill == 0 or self.num_decode == 0:
            return (
                f"num_prefill ({self.num_prefill}) / num_decode ({self.num_decode}): PD needs at least one of each; "
                "set both, or both to 0 for a co-located fleet"
            )
        if values["backend"] == "external":
            return "num_prefill / num_decode: PD needs launched workers (backend 'sim' or 'sglang'), not 'external'"
        gpus = (self.num_prefill + self.num_decode) * values["tp_size"]
        if values["num_gpus_set"] and values["num_gpus"] != gpus:
            return (
                f"num_gpus ({values['num_gpus']}) must equal (num_prefill + num_decode) × tp_size = {gpus} "
                "in PD mode; leave num_gpus unset"
            )
        if values["router_impl"] == "python" or values["implementation"] != "smg":
            return "num_prefill / num_decode: PD routing needs SMG (router.implementation 'smg'; pip install smg)"
        if not values["smg_policy"]:
            return f"routing_policy {values['routing_policy']!r}: PD mode runs on SMG; use one of SMG's policies"
        return None
