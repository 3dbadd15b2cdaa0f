"""Host-only checks of the policy library: fast, no VM.

Every policy compiles with -Wall -Werror against the lab kernel's vmlinux.h, declares
each tunable of its policy.toml as a `const volatile` global of the right size, names its
ops schedcp_<name> and sets a watchdog timeout. Bad tunable values are refused before
any build, with a message naming the parameter and its range. The workload helpers parse
what the real tools print.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedcpd.bpf.policy import PolicyError, PolicySpec, Tunable, find_policy, load_library
from schedcpd.bpf.scheduler import prepare
from schedcpd.bpf.toolchain import build_object
from schedcpd.lab import workloads
from tests.policies.conftest import REQUIRED

LIBRARY = {spec.name: spec for spec in load_library()}
C_SIZES = {"u32": 4, "s32": 4, "u64": 8, "s64": 8, "bool": 1}


def test_library_holds_the_required_policies() -> None:
    assert set(REQUIRED) <= set(LIBRARY)
    assert len(LIBRARY) >= 10


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_metadata_says_when_to_use_and_when_not(name: str) -> None:
    spec = LIBRARY[name]
    assert len(spec.description) > 80 and spec.algorithm
    assert spec.workloads and spec.avoid and spec.tags
    for t in spec.tunables:
        assert t.description, f"{name}.{t.name} has no description"
    src = spec.source.read_text()
    assert f'.name\t\t= "schedcp_{name}"' in src or f'.name = "schedcp_{name}"' in src
    m = re.search(r"\.timeout_ms\s*=\s*(\d+)", src)
    assert m and 5000 <= int(m.group(1)) <= 30000, "timeout_ms must be set, 5-30 s"
    assert f"SCHEDCP_DEFINE_EXIT({name})" in src


def _rodata_vars(obj: Path) -> dict[str, int]:
    """const volatile globals of an object and their sizes, from its BTF."""
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(obj)], check=True,
                         capture_output=True, text=True).stdout
    sec = out[out.index("DATASEC '.rodata'"):] if "DATASEC '.rodata'" in out else ""
    names = dict(re.findall(r"\[(\d+)\] VAR '(\w+)'", out))
    sizes = {}
    for type_id, size in re.findall(r"type_id=(\d+) offset=\d+ size=(\d+)",
                                    sec.split("\n[", 1)[0]):
        if type_id in names:
            sizes[names[type_id]] = int(size)
    return sizes


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_policy_compiles_warning_free_with_its_tunables(name: str, tmp_path: Path) -> None:
    spec = LIBRARY[name]
    built = build_object(spec.source, tmp_path)  # -Wall -Werror
    data = built.path.read_bytes()
    assert f"schedcp_{name}".encode() in data
    rodata = _rodata_vars(built.path)
    for t in spec.tunables:
        assert t.name in rodata, f"{name}: tunable {t.name} is not a const volatile global"
        want = t.max_len + 1 if t.type == "str" else C_SIZES[t.type]
        assert rodata[t.name] == want, f"{name}.{t.name}: size {rodata[t.name]} != {want}"


INT_TUNABLES = [(spec.name, t) for spec in LIBRARY.values() for t in spec.tunables
                if t.min is not None and t.max is not None]


@pytest.mark.parametrize(("name", "tunable"), INT_TUNABLES,
                         ids=[f"{n}.{t.name}" for n, t in INT_TUNABLES])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_out_of_range_value_is_refused_naming_parameter_and_range(
        name: str, tunable: Tunable, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert tunable.min is not None and tunable.max is not None
    bad = data.draw(st.one_of(st.integers(max_value=tunable.min - 1),
                              st.integers(min_value=tunable.max + 1),
                              st.text(alphabet="xyz-", min_size=1, max_size=5)))
    out = tmp_path_factory.mktemp("never-built")
    with pytest.raises(PolicyError) as err:
        prepare(LIBRARY[name], {tunable.name: bad}, out)
    msg = str(err.value)
    assert tunable.name in msg and f"[{tunable.min}, {tunable.max}]" in msg
    assert not any(out.iterdir()), "a refused value must not build anything"


STR_TUNABLES = [(spec.name, t) for spec in LIBRARY.values() for t in spec.tunables
                if t.type == "str"]


@pytest.mark.parametrize(("name", "tunable"), STR_TUNABLES,
                         ids=[f"{n}.{t.name}" for n, t in STR_TUNABLES])
@settings(max_examples=15, deadline=None)
@given(extra=st.integers(min_value=1, max_value=40))
def test_too_long_string_is_refused(name: str, tunable: Tunable, extra: int) -> None:
    with pytest.raises(PolicyError, match=rf"{tunable.name}=.*at most {tunable.max_len} bytes"):
        LIBRARY[name].resolve_params({tunable.name: "a" * (tunable.max_len + extra)})


def test_unknown_parameter_lists_the_known_ones() -> None:
    with pytest.raises(PolicyError, match=r"no parameter 'slice'.*long_comms"):
        find_policy("ljf").resolve_params({"slice": 5})


def _spec(name: str) -> PolicySpec:
    return LIBRARY[name]


def test_ljf_and_cgroup_weight_take_name_lists() -> None:
    assert _spec("ljf").tunable("long_comms").type == "str"
    assert _spec("ljf").resolve_params({"long_comms": "longjob,cc1"})["long_comms"] == "longjob,cc1"
    assert "cgroup2" in _spec("cgroup_weight").kernel_features


# --- workloads ---------------------------------------------------------------------------

HISTOGRAM = """# /dev/cpu_dma_latency set to 0us
000003 000050\t000040
000010 000040\t000050
000900 000001\t000001
# Total: 000000091 000000091
# Histogram Overflows: 00000 00001
"""


def test_p99_is_read_from_the_cyclictest_histogram() -> None:
    # 183 samples: 90 at 3 us, 90 at 10 us, 2 at 900 us, 1 overflow: p99 is 900 us.
    assert workloads.p99_from_histogram(HISTOGRAM) == 900.0
    assert workloads.p99_from_histogram(HISTOGRAM.replace("000001\t000001", "000000\t000000")
                                        .replace("00000 00001", "00000 00000")) == 10.0
    with pytest.raises(workloads.WorkloadError):
        workloads.p99_from_histogram("cyclictest: error\n")


def test_longtail_driver_reports_makespan_and_lower_bound() -> None:
    out = subprocess.run([str(workloads.driver()), "longtail", "3", "20", "60"],
                         check=True, capture_output=True, text=True).stdout
    d = workloads.details(out)
    tasks = re.findall(r"task (\w+) cpu_s=([\d.]+)", out)
    assert sorted(n for n, _ in tasks) == ["longjob"] + ["shortjob"] * 3
    total = sum(float(c) for _, c in tasks)
    longest = max(float(c) for _, c in tasks)
    assert d["lower_bound_s"] == pytest.approx(max(total / d["cpus"], longest), abs=2e-4)
    assert d["makespan_s"] >= d["lower_bound_s"] * 0.95
    assert workloads.get("longtail").parse(out, 99.0) == d["makespan_s"]


def test_mixed_driver_runs_hogs_sleepers_and_forks() -> None:
    out = subprocess.run([str(workloads.driver()), "mixed", "1", "2", "1", "0.3"],
                         check=True, capture_output=True, text=True).stdout
    d = workloads.details(out)
    assert d["hogs"] == 1 and d["sleepers"] == 2
    assert d["wakeups"] > 10 and d["forks"] > 0


def test_every_workload_declares_its_metric() -> None:
    assert {"mixed", "longtail", "latency", "build"} <= set(workloads.WORKLOADS)
    for wl in workloads.WORKLOADS.values():
        assert wl.metric and wl.unit and wl.timeout_s > 0
        # Times and latencies are lower-is-better; the general suite has rates too.
        assert wl.lower_is_better or wl.name.startswith("g-"), wl.name
    with pytest.raises(workloads.WorkloadError, match="known: mixed"):
        workloads.get("nope")
