"""The whole Verifier on the real sched_ext kernel: every library policy and the whole broken
corpus in ONE lab boot (a shared LabSession), with the quick dynamic settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from schedcpd.bpf.policy import load_library
from schedcpd.cli import main as schedcpctl
from schedcpd.lab.session import LabSession
from schedcpd.lab.vm import LAB_ATTEMPTS
from schedcpd.verifier import pipeline, token
from schedcpd.verifier.dynamic import QUICK
from schedcpd.verifier.token import TokenError
from schedcpd.verifier.verdict import Verdict
from tests.verifier.test_static import BROKEN, STATIC_REJECTS

pytestmark = pytest.mark.lab

# Broken schedulers that get past the static stage: where they must fail, and why.
LAB_REJECTS = {
    "oob_map_access": ("kernel", "unbounded min value"),
    "starves_class": ("dynamic", "starvation: the niced"),
    "ignores_affinity": ("dynamic", "not allowed"),
    "error_under_load": ("dynamic", "run queue too deep"),
}
LIBRARY = [p.name for p in load_library()]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Verdict]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCHEDCP_STATE_DIR", str(tmp_path_factory.mktemp("state")))

        async def all_of_them() -> dict[str, Verdict]:
            out: dict[str, Verdict] = {}
            sources = {n: s.source for n, s in ((p.name, p) for p in load_library())}
            sources |= {n: BROKEN / f"{n}.bpf.c" for n in [*STATIC_REJECTS, *LAB_REJECTS]}
            s = LabSession()
            await s.start()
            try:
                for name, src in sources.items():
                    for _ in range(LAB_ATTEMPTS):
                        out[name] = await pipeline.verify(src, {}, settings=QUICK, session=s)
                        if not out[name].lab_fault:
                            break
                        # The guest died (a TCG kernel panic, a lab fault): a fresh one,
                        # and this scheduler again.
                        await s.close()
                        s = LabSession()
                        await s.start()
            finally:
                await s.close()
            return out

        yield asyncio.run(all_of_them())


@pytest.mark.parametrize("policy", LIBRARY)
def test_every_library_policy_passes(verdicts: dict[str, Verdict], policy: str) -> None:
    v = verdicts[policy]
    assert v.passed, v.reason() + "\n" + json.dumps(v.as_dict(), indent=1)[:3000]
    assert [s.stage for s in v.stages] == ["static", "kernel", "dynamic"]
    assert v.policy == policy and v.kernel_release
    perf = v.stage("dynamic").details["performance"]  # type: ignore[union-attr]
    # Clearly worse after the configured rounds is confirmed by as many again.
    assert len(perf["baseline_s"]) == len(perf["candidate_s"])
    assert len(perf["baseline_s"]) in (QUICK.perf_rounds, 2 * QUICK.perf_rounds)
    assert v.token and Path(v.object_path).is_file()


@pytest.mark.parametrize("name", sorted(STATIC_REJECTS))
def test_static_rejects_never_reach_the_lab(verdicts: dict[str, Verdict], name: str) -> None:
    v = verdicts[name]
    assert not v.passed and v.failed_stage == "static" and len(v.stages) == 1
    assert STATIC_REJECTS[name][1] in v.reason()
    assert not v.token


@pytest.mark.parametrize("name", sorted(LAB_REJECTS))
def test_broken_scheduler_fails_at_its_stage(verdicts: dict[str, Verdict], name: str) -> None:
    stage, words = LAB_REJECTS[name]
    v = verdicts[name]
    assert not v.passed, json.dumps(v.as_dict(), indent=1)[:3000]
    assert v.failed_stage == stage, v.reason()
    assert words in v.reason(), v.reason()
    assert not v.token and v.stages[-1].stage == stage


def test_kernel_rejection_keeps_the_verifier_log(verdicts: dict[str, Verdict]) -> None:
    st = verdicts["oob_map_access"].stage("kernel")
    assert st is not None
    assert "END PROG LOAD LOG" in st.details["verifier_log"]
    assert st.errors[0].source_line == 19  # enqueues[cpu]++


def test_token_of_a_pass_guards_deployment(verdicts: dict[str, Verdict], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    v = verdicts["fifo"]
    state = Path(v.token and token.key_path().parent.parent)  # set by the fixture's env
    monkeypatch.setenv("SCHEDCP_STATE_DIR", str(state))
    obj = Path(v.object_path)
    token.require_valid(v.token, obj, {}, v.kernel_release)
    with pytest.raises(TokenError, match="parameters differ"):
        token.require_valid(v.token, obj, {"slice_us": 1000}, v.kernel_release)
    tampered = tmp_path / "t.bpf.o"
    tampered.write_bytes(obj.read_bytes() + b"\0")
    with pytest.raises(TokenError, match="does not match"):
        token.require_valid(v.token, tampered, {}, v.kernel_release)
    assert schedcpctl(["verify-token", v.token, str(obj)]) == 0
    assert schedcpctl(["verify-token", v.token, str(obj), "--param", "slice_us=1000"]) == 1
