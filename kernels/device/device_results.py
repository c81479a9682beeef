#!/usr/bin/env python3
"""Device check results: the summary written on the GPU machine, and their import here.

  device_results.py summarize WORK
      WORK: kernels/device_check.sh's work folder (steps.tsv, meta.json, bench.json,
      device_tests.xml, profiles/<gpu>/*.json). Writes WORK/summary.md and WORK/summary.json.
  device_results.py import ARCHIVE [--root DIR]
      scripts/device-import.sh: profiles into DIR/profiles/<gpu>/, the summary next to them
      (device-check.md, device-check.json), and the numbers into DIR/docs/device.md between
      the markers of that GPU (a section per GPU, added or replaced).

Standard library only: it runs on the device image and on the CPU machine alike.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

# The targets of docs/kernels.md: each benchmark as a fraction of its same-run ceiling.
TARGETS = [
    ("BM_Gather/bf16/4096", "bytes", "copy", None),
    ("BM_Gather/bf16/65536", "bytes", "copy", 0.80),
    ("BM_Gather/fp8_e4m3/65536", "bytes", "copy", 0.80),
    ("BM_Gather/uva_bf16/16384", "bytes", "copy", None),
    ("BM_Gate/16384", "bytes", "copy", 0.75),
    ("BM_Conv/16384", "bytes", "copy", 0.75),
    ("BM_GateConvFused/16384", "bytes", "copy", 0.75),
    ("BM_GroupedGemm/8192", "flops", "gemm", 0.50),
]


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def steps_of(work):
    rows = []
    try:
        with open(os.path.join(work, "steps.tsv")) as f:
            header = f.readline().rstrip("\n").split("\t")
            for line in f:
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    except OSError:
        pass
    return rows


def tests_of(work):
    """Counts from CTest's JUnit file: passed, failed, skipped, and the failures' names."""
    out = {"passed": 0, "failed": 0, "skipped": 0, "failures": [], "skip_reasons": []}
    try:
        root = ET.parse(os.path.join(work, "device_tests.xml")).getroot()
    except (OSError, ET.ParseError):
        return None
    for case in root.iter("testcase"):
        status = case.get("status", "")
        if case.find("failure") is not None or status == "fail":
            out["failed"] += 1
            out["failures"].append(case.get("name"))
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            out["skipped"] += 1
            out_text = "".join(case.itertext())
            m = re.search(r"no GPU here: [^\n]*", out_text)
            if m and m.group(0) not in out["skip_reasons"]:
                out["skip_reasons"].append(m.group(0)[:200])
        else:
            out["passed"] += 1
    return out


def bench_of(work):
    data = load_json(os.path.join(work, "bench.json"))
    if not data:
        return None
    runs, errors = {}, {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        if b.get("error_occurred") or "error_message" in b:
            errors[b["name"]] = b.get("error_message", "error")
            continue
        runs[b["name"]] = b

    def rate(name, kind):
        b = runs.get(name)
        if not b:
            return None
        return b.get("bytes_per_second") if kind == "bytes" else b.get("FLOP/s")

    ceilings = {"copy": rate("BM_DeviceCopy/manual_time", "bytes") or rate("BM_DeviceCopy", "bytes"),
                "gemm": rate("BM_CublasDense/manual_time", "flops") or rate("BM_CublasDense", "flops")}
    rows = []
    for name, kind, ceiling, target in TARGETS:
        r = rate(name + "/manual_time", kind) or rate(name, kind)
        c = ceilings[ceiling]
        frac = r / c if (r and c) else None
        rows.append({"benchmark": name, "unit": "GB/s" if kind == "bytes" else "TFLOP/s",
                     "rate": r / (1e9 if kind == "bytes" else 1e12) if r else None,
                     "ceiling": "device copy" if ceiling == "copy" else "cuBLAS fp32 GEMM",
                     "fraction_of_ceiling": frac, "target": target,
                     "meets": (frac >= target) if (frac is not None and target) else None,
                     "error": next((e for n, e in errors.items() if n.startswith(name)), None)})
    return {"context": data.get("context", {}),
            "ceilings": {"device_copy_GBps": ceilings["copy"] / 1e9 if ceilings["copy"] else None,
                         "cublas_fp32_TFLOPps": ceilings["gemm"] / 1e12 if ceilings["gemm"] else None},
            "rows": rows, "errors": errors}


def profiles_of(work, gpu):
    folder = os.path.join(work, "profiles", gpu)
    rows, provenance = [], None
    if not os.path.isdir(folder):
        return rows, provenance
    for name in sorted(os.listdir(folder)):
        p = load_json(os.path.join(folder, name))
        if not p or p.get("schema") != "engramsim.kernel_profile" or not p.get("points"):
            continue
        provenance = provenance or p.get("provenance")
        ceil = p.get("ceilings", {})
        pt = max(p["points"], key=lambda q: q.get("bytes", 0) + q.get("flops", 0))
        gemm = pt.get("flops", 0) > 0 and p["kernel"] in ("gemm", "moe_grouped_gemm")
        rate = pt.get("flop_per_s") if gemm else pt.get("bytes_per_s")
        c = ceil.get("gemm_flop_per_s") if gemm else ceil.get("copy_bytes_per_s")
        rows.append({"file": name, "kernel": p["kernel"], "variant": p.get("variant", ""),
                     "shape": {k: int(v) for k, v in pt.get("dims", {}).items()},
                     "points": len(p["points"]), "median_us": pt.get("median_s", 0) * 1e6,
                     "rate": (rate or 0) / (1e12 if gemm else 1e9),
                     "unit": "TFLOP/s" if gemm else "GB/s",
                     "fraction_of_ceiling": (rate / c) if (rate and c) else None})
    return rows, provenance


def fmt(x, spec=".1f", none="-", suffix=""):
    return none if x is None else format(x, spec) + suffix


def pct(x, spec=".1f"):
    return fmt(None if x is None else 100 * x, spec, suffix="%")


def summarize(work):
    meta = load_json(os.path.join(work, "meta.json"), {})
    gpu = meta.get("gpu", "unknown")
    steps = steps_of(work)
    tests = tests_of(work)
    bench = bench_of(work)
    profiles, provenance = profiles_of(work, gpu)
    harness_md = os.path.join(work, "harness", "summary.md")
    summary = {"schema": "engramsim.device_check_summary", "version": 1, "meta": meta,
               "steps": steps, "tests": tests, "bench": bench, "profiles": profiles,
               "profile_provenance": provenance,
               # the PyTorch harness's table (executor/torch/device_harness.sh), as it wrote it
               "harness_md": open(harness_md).read() if os.path.exists(harness_md) else None}
    with open(os.path.join(work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    with open(os.path.join(work, "summary.md"), "w") as f:
        f.write(markdown(summary))
    print(f"summary: {len(steps)} steps, {len(profiles)} profiles")


def markdown(s, heading="##"):
    m = s["meta"]
    lines = [f"{heading} {m.get('gpu_name', '?')} (sm_{m.get('cuda_architecture', '?')})"
             f"{' - REHEARSAL, no GPU' if m.get('rehearsal') else ''}", "",
             f"`kernels/device_check.sh`, commit `{m.get('commit', '?')}`, {m.get('date_utc', '?')}, "
             f"host `{m.get('host', '?')}` ({m.get('cpu_cores', '?')} cores); profiles in "
             f"`profiles/{m.get('gpu', '?')}/`.", "",
             "| step | status | seconds | budget s |", "| --- | --- | --- | --- |"]
    for st in s["steps"]:
        lines.append(f"| {st.get('step')} | {st.get('status')} | {st.get('seconds')} | {st.get('budget_s')} |")
    t = s["tests"]
    lines.append("")
    if t is None:
        lines.append("Device tests: no results.")
    else:
        lines.append(f"Device tests (CUDA kernels against their CPU references): {t['passed']} passed, "
                     f"{t['failed']} failed, {t['skipped']} skipped"
                     + (f"; failed: {', '.join(t['failures'])}" if t["failures"] else "")
                     + (f"; skipped because {t['skip_reasons'][0]}" if t["skip_reasons"] else "") + ".")
    b = s["bench"]
    lines.append("")
    if not b:
        lines.append("Benchmarks: no results.")
    else:
        c = b["ceilings"]
        lines += [f"Benchmarks (`bench_kernels_cuda`, CUDA events, L2 flushed), same-run ceilings: "
                  f"device copy {fmt(c['device_copy_GBps'])} GB/s, cuBLAS fp32 GEMM "
                  f"{fmt(c['cublas_fp32_TFLOPps'], '.2f')} TFLOP/s.", "",
                  "| benchmark | rate | of ceiling | target | |", "| --- | --- | --- | --- | --- |"]
        for r in b["rows"]:
            verdict = "" if r["meets"] is None else ("meets" if r["meets"] else "**below**")
            if r["rate"] is None:
                verdict = "not measured" + (f": {r['error'][:80]}" if r["error"] else "")
            lines.append(f"| `{r['benchmark']}` | {fmt(r['rate'], '.2f', suffix=' ' + r['unit'])} | "
                         f"{pct(r['fraction_of_ceiling'])} of {r['ceiling']} | "
                         f"{pct(r['target'], '.0f')} | {verdict} |")
    lines.append("")
    if not s["profiles"]:
        lines.append("Profiles: none.")
    else:
        pv = s.get("profile_provenance") or {}
        lines += [f"Profiles (`engramsim-device profile`, timing {pv.get('timing', '?')}, "
                  f"{pv.get('cache_flush', '?')}; driver {pv.get('driver_version') or '-'}, "
                  f"CUDA runtime {pv.get('cuda_runtime_version') or '-'}): the largest shape of each.", "",
                  "| kernel | variant | shapes | largest shape | median us | rate | of ceiling |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in s["profiles"]:
            shape = ", ".join(f"{k} {v}" for k, v in r["shape"].items())
            lines.append(f"| {r['kernel']} | {r['variant']} | {r['points']} | {shape} | "
                         f"{r['median_us']:.1f} | {r['rate']:.2f} {r['unit']} | "
                         f"{pct(r['fraction_of_ceiling'])} |")
        for n in pv.get("notes", []):
            lines.append(f"\nNote: {n}")
    if s.get("harness_md"):
        body = s["harness_md"].split("\n", 1)[1] if s["harness_md"].startswith("# ") else s["harness_md"]
        lines += ["", "PyTorch harness (`executor/torch/device_harness.sh`; results in "
                  f"`profiles/{m.get('gpu', '?')}/harness/`):", body.strip()]
    return "\n".join(lines) + "\n"


BEGIN = "<!-- device-results {gpu} begin (scripts/device-import.sh) -->"
END = "<!-- device-results {gpu} end -->"
ALL_BEGIN = "<!-- device-results begin -->"
ALL_END = "<!-- device-results end -->"


def safe_members(tar):
    for m in tar.getmembers():
        if m.name.startswith("/") or ".." in m.name.split("/") or not (m.isfile() or m.isdir()):
            raise SystemExit(f"device-import: refusing archive member {m.name!r}")
        yield m


def import_archive(archive, root):
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=list(safe_members(tar)), **extra)
        meta = load_json(os.path.join(tmp, "meta.json"))
        if not meta or meta.get("schema") != "engramsim.device_check":
            raise SystemExit(f"device-import: {archive} is not a device check archive (no meta.json)")
        gpu = meta["gpu"]
        if not re.fullmatch(r"[a-z0-9-]+", gpu):
            raise SystemExit(f"device-import: bad GPU name {gpu!r}")
        if not os.path.exists(os.path.join(tmp, "summary.json")):
            summarize(tmp)
        summary = load_json(os.path.join(tmp, "summary.json"))
        dest = os.path.join(root, "profiles", gpu)
        os.makedirs(dest, exist_ok=True)
        src = os.path.join(tmp, "profiles", gpu)
        copied = []
        if os.path.isdir(src):
            for name in sorted(os.listdir(src)):
                if name.endswith(".json"):
                    shutil.copyfile(os.path.join(src, name), os.path.join(dest, name))
                    copied.append(name)
        harness = os.path.join(tmp, "harness")
        if os.path.isdir(harness):  # each plan's results.json and steps.csv, and bench.json
            if os.path.isfile(os.path.join(harness, "bench.json")):
                os.makedirs(os.path.join(dest, "harness"), exist_ok=True)
                shutil.copyfile(os.path.join(harness, "bench.json"), os.path.join(dest, "harness", "bench.json"))
            for plan in sorted(os.listdir(harness)):
                for name in ("results.json", "steps.csv"):
                    f = os.path.join(harness, plan, name)
                    if os.path.isfile(f):
                        os.makedirs(os.path.join(dest, "harness", plan), exist_ok=True)
                        shutil.copyfile(f, os.path.join(dest, "harness", plan, name))
        shutil.copyfile(os.path.join(tmp, "summary.json"), os.path.join(dest, "device-check.json"))
        with open(os.path.join(dest, "device-check.md"), "w") as f:
            f.write("# Device check\n\n" + markdown(summary, heading="##"))
        doc = os.path.join(root, "docs", "device.md")
        with open(doc) as f:
            text = f.read()
        if ALL_BEGIN not in text or ALL_END not in text:
            raise SystemExit(f"device-import: {doc} has no {ALL_BEGIN} ... {ALL_END} markers")
        section = BEGIN.format(gpu=gpu) + "\n" + markdown(summary, heading="###") + END.format(gpu=gpu)
        pattern = re.compile(re.escape(BEGIN.format(gpu=gpu)) + ".*?" + re.escape(END.format(gpu=gpu)), re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: section, text)
        else:
            head, tail = text.split(ALL_END, 1)
            head = head.replace("\n_No device results yet._\n", "\n")
            text = head.rstrip("\n") + "\n\n" + section + "\n\n" + ALL_END + tail
        with open(doc, "w") as f:
            f.write(text)
        print(f"device-import: {len(copied)} profiles -> {os.path.relpath(dest, root)}/, "
              f"summary -> {os.path.relpath(dest, root)}/device-check.md, table -> docs/device.md ({gpu})")
        if meta.get("rehearsal"):
            print("device-import: note: this archive is a rehearsal (no GPU): its numbers are not a GPU's")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarize")
    s.add_argument("work")
    i = sub.add_parser("import")
    i.add_argument("archive")
    i.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    a = ap.parse_args()
    if a.cmd == "summarize":
        summarize(a.work)
    else:
        import_archive(a.archive, os.path.abspath(a.root))


if __name__ == "__main__":
    sys.exit(main())
