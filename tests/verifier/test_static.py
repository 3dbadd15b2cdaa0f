"""The static stage on real builds: library policies pass, broken ones fail for their reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedcpd.bpf.policy import load_library
from schedcpd.verifier import static

BROKEN = Path(__file__).parent / "broken"
# Broken schedulers the static stage must reject, and the check that must say so.
STATIC_REJECTS = {
    "never_dispatches": ("dispatch", "never moves a task to a CPU"),
    "drops_tasks": ("enqueue", "silent drop"),
    "unbounded_loop": ("loops", "no compile-time bound"),
    "zero_slice": ("slice", "zero slice"),
    "huge_slice": ("slice", "infinite slice"),
    "no_watchdog": ("timeout", "at most 30000"),
    "forbidden_helper": ("helpers", "bpf_trace_printk"),
}
LATER_STAGES = {"oob_map_access", "starves_class", "ignores_affinity", "error_under_load"}


def test_the_corpus_is_complete() -> None:
    names = {p.name.removesuffix(".bpf.c") for p in BROKEN.glob("*.bpf.c")}
    assert names == set(STATIC_REJECTS) | LATER_STAGES
    assert len(names) >= 8


@pytest.mark.parametrize("policy", [p.name for p in load_library()])
def test_library_policy_passes_static(policy: str, tmp_path: Path) -> None:
    spec = next(p for p in load_library() if p.name == policy)
    params = {k: str(v) for k, v in spec.resolve_params({}).items()}
    v, obj = static.run(spec.source, params, tmp_path)
    assert v.passed, [f.text() for f in v.findings]
    assert obj is not None and obj.is_file()


@pytest.mark.parametrize("name", sorted(STATIC_REJECTS))
def test_broken_scheduler_is_rejected_statically(name: str, tmp_path: Path) -> None:
    check, words = STATIC_REJECTS[name]
    v, _ = static.run(BROKEN / f"{name}.bpf.c", {}, tmp_path)
    assert not v.passed
    errors = [f for f in v.errors if f.check == check]
    assert errors, [f.text() for f in v.findings]
    assert words in errors[0].message


@pytest.mark.parametrize("name", sorted(LATER_STAGES))
def test_subtler_breakage_passes_static(name: str, tmp_path: Path) -> None:
    v, _ = static.run(BROKEN / f"{name}.bpf.c", {}, tmp_path)
    assert v.passed, [f.text() for f in v.findings]


def test_affinity_heuristic_flags_local_on_without_cpumask(tmp_path: Path) -> None:
    v, _ = static.run(BROKEN / "ignores_affinity.bpf.c", {}, tmp_path)
    assert any(f.check == "affinity" and f.severity == "warning" for f in v.findings)


def test_parameters_change_the_slice_that_is_checked(tmp_path: Path) -> None:
    src = BROKEN / "zero_slice.bpf.c"
    assert static.run(src, {"slice_us": "5000"}, tmp_path)[0].passed
    v, _ = static.run(src, {"slice_us": "2000000"}, tmp_path)
    assert any("2000 ms" in f.message for f in v.errors)


def test_unknown_raw_parameter_is_refused(tmp_path: Path) -> None:
    v, _ = static.run(BROKEN / "zero_slice.bpf.c", {"nope": "1"}, tmp_path)
    assert any(f.check == "params" and "nope" in f.message for f in v.errors)


def test_compile_error_points_at_the_line(tmp_path: Path) -> None:
    src = Path(__file__).parents[1] / "lab" / "schedulers" / "does_not_compile.bpf.c"
    v, obj = static.run(src, {}, tmp_path)
    assert obj is None and not v.passed
    assert v.errors[0].source_line == 9
    assert "slice_that_does_not_exist" in v.errors[0].message


def test_warnings_become_errors(tmp_path: Path) -> None:
    src = tmp_path / "unused.bpf.c"
    src.write_text((BROKEN / "huge_slice.bpf.c").read_text().replace(
        "u64 enq_flags)\n{", "u64 enq_flags)\n{\n\tint unused;", 1))
    v, _ = static.run(src, {}, tmp_path / "out")
    assert any("unused" in f.message for f in v.errors)


def test_not_a_scheduler(tmp_path: Path) -> None:
    src = tmp_path / "plain.bpf.c"
    src.write_text('#include <schedcp/scx.bpf.h>\nchar _license[] SEC("license") = "GPL";\n'
                   'SEC("tp_btf/sched_switch") int BPF_PROG(sw) { return 0; }\n')
    v, _ = static.run(src, {}, tmp_path / "out")
    assert any("not a sched_ext scheduler" in f.message for f in v.errors)


@pytest.mark.parametrize(("code", "bounded"), [
    ("for (i = 0; i < 10; i++) x;", True),
    ("for (i = 10; i > 0; i--) x;", True),
    ("for (i = 0; i < n && i < MAX_X; i++) x;", True),
    ("while (i < slice_us) i++;", True),
    ("bpf_for(i, 0, n) {}", True),
    ("while (n > 0 && can_loop) n--;", True),
    ("for (i = 0; i < n; i++) x;", False),
    ("while (1) {}", False),
    ("for (;;) {}", False),
    ("do { } while (x != 0);", False),
    ("/* while (1) */ x = 1;", True),
])
def test_loop_bounds(code: str, bounded: bool) -> None:
    assert (static.check_loops(code, {"slice_us"}) == []) == bounded
