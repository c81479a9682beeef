"""The step plan `engramsim plan CONFIG -o plan.json` writes (schema engramsim.step_plan, v1).

The harness serves exactly these steps: the same slices, preemptions and rows as the simulator
plans. A file that is not such a plan, or is cut short, is refused with what is wrong.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "engramsim.step_plan"
VERSION = 1


class PlanError(ValueError):
    """A plan file that cannot be served as it stands."""


@dataclass
class Slice:
    request: int
    first: int   # first position of the request's sequence fed in this step
    count: int   # tokens fed
    decode: bool  # one token at the sequence's end (else a prefill or a chunk of one)
    sample: bool  # reaches the sequence's end, so the step samples a token


@dataclass
class PlanStep:
    index: int
    prefill: bool
    slices: list[Slice]
    preempted: list[int]
    rows: list[dict[str, int]] | None  # per Engram layer: lookups, distinct, digest


@dataclass
class StepPlan:
    model: dict[str, Any]
    engram: dict[str, Any] | None
    scheduler: dict[str, Any]
    prompts: list[list[int]]
    outputs: list[list[int]]
    steps: list[PlanStep]
    config: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    engramsim: str = ""  # the version that wrote the plan
    prediction: dict | None = None  # `engramsim plan --predict`: the simulator's, made first

    def token(self, request: int, position: int) -> int:
        p = self.prompts[request]
        return p[position] if position < len(p) else self.outputs[request][position - len(p)]

    def sequence(self, request: int) -> list[int]:
        """Every token the request feeds: the prompt, then the outputs (teacher-forced)."""
        return self.prompts[request] + self.outputs[request]


def _need(doc: dict, key: str, where: str):
    if key not in doc:
        raise PlanError(f"{where}: missing key '{key}'")
    return doc[key]


def load(path: str) -> StepPlan:
    """A plan file, plain or gzip-compressed (.gz)."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, EOFError) as e:
        raise PlanError(f"{path}: not a complete JSON document ({e}); a plan cut short?") from e
    except OSError as e:
        raise PlanError(f"{path}: {e.strerror}") from e
    return from_json(doc, path)


def from_json(doc: dict, source: str = "plan") -> StepPlan:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise PlanError(f"{source}: schema is {doc.get('schema') if isinstance(doc, dict) else None!r}, "
                        f"not '{SCHEMA}' (write one with `engramsim plan CONFIG -o FILE`)")
    if doc.get("version") != VERSION:
        raise PlanError(f"{source}: version {doc.get('version')!r}; this harness reads version {VERSION}")
    model = _need(doc, "model", source)
    for k in ("hidden", "layers", "n_heads", "n_kv_heads", "head_dim", "intermediate", "vocab", "dtype"):
        _need(model, k, source + ": model")
    sched = _need(doc, "scheduler", source)
    for k in ("max_num_seqs", "max_num_batched_tokens", "kv_block_size", "num_kv_blocks"):
        _need(sched, k, source + ": scheduler")
    engram = doc.get("engram")
    reqs = _need(doc, "requests", source)
    prompts = [list(map(int, r["prompt"])) for r in reqs]
    outputs = [list(map(int, r["output"])) for r in reqs]
    steps = []
    n_layers = len(engram["layer_ids"]) if engram else 0
    for i, s in enumerate(_need(doc, "steps", source)):
        slices = []
        for x in s["slices"]:
            if len(x) != 5:
                raise PlanError(f"{source}: steps[{i}].slices: {x} is not [request, first, count, decode, sample]")
            r, first, count = int(x[0]), int(x[1]), int(x[2])
            if r >= len(prompts) or count < 1 or first + count > len(prompts[r]) + len(outputs[r]):
                raise PlanError(f"{source}: steps[{i}].slices: {x} lies outside request {r}'s sequence")
            slices.append(Slice(r, first, count, bool(x[3]), bool(x[4])))
        rows = s.get("rows")
        if engram and (rows is None or len(rows) != n_layers):
            raise PlanError(f"{source}: steps[{i}].rows: one entry per Engram layer ({n_layers}) expected")
        steps.append(PlanStep(int(s["index"]), bool(s["prefill"]), slices,
                              [int(p) for p in s.get("preempted", [])], rows))
    if not steps:
        raise PlanError(f"{source}: no steps")
    prediction = doc.get("prediction")
    if prediction is not None and len(prediction.get("step_s", [])) != len(steps):
        raise PlanError(f"{source}: prediction.step_s has {len(prediction.get('step_s', []))} steps, "
                        f"the plan {len(steps)}")
    return StepPlan(model, engram, sched, prompts, outputs, steps, doc.get("config", {}), source,
                    str(doc.get("engramsim", "")), prediction)
