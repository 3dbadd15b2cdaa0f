"""Stage 1, static: build with -Wall -Werror, then check what the kernel verifier cannot.

The kernel verifier proves that each program is memory-safe and terminates. It does not
know what a scheduler is for: whether enqueue can lose a task, whether anything ever moves
queued tasks to a CPU, how long a slice is, whether the watchdog is set. Those are checked
here, on the compiled object where it can tell (calls, constants, control flow) and on the
source where only the source can tell (how a loop is bounded).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from schedcpd.bpf.toolchain import BuildError, build_object
from schedcpd.lab import kernel
from schedcpd.verifier import bpfobj, dataflow
from schedcpd.verifier.bpfobj import BpfObject, Function, Insn
from schedcpd.verifier.verdict import ERROR, INFO, WARNING, Finding, StageVerdict, stage_result

STAGE = "static"
DSQ_BUILTIN = 1 << 63
DSQ_LOCAL_ON = 1 << 62
SLICE_INF = (1 << 64) - 1


@dataclass(frozen=True)
class Limits:
    timeout_ms_max: int = 30000  # the kernel's own ceiling for the watchdog
    timeout_ms_warn: int = 5000  # 7.x kernels warn below ~4.1 s
    slice_min_ns: int = 50_000  # below this a task does little but switch
    slice_max_ns: int = 500_000_000  # above this a CPU hog holds a CPU for half a second


# Calls that insert the task into a DSQ or hand it to another structure that dispatch
# drains; and scx_bpf_error/exit, after which the kernel takes every task back.
INSERT_KFUNCS = frozenset({"scx_bpf_dsq_insert", "scx_bpf_dsq_insert_vtime",
                           "scx_bpf_dispatch", "scx_bpf_dispatch_vtime"})
HANDOFF_KFUNCS = INSERT_KFUNCS | {"scx_bpf_error_bstr", "scx_bpf_exit_bstr",
                                  "bpf_rbtree_add_impl", "bpf_list_push_back_impl",
                                  "bpf_list_push_front_impl"}
HANDOFF_HELPERS = frozenset({"map_push_elem"})
# What lets dispatch make progress: move queued tasks to the CPU's local DSQ.
MOVE_KFUNCS = frozenset({"scx_bpf_dsq_move_to_local", "scx_bpf_consume", "scx_bpf_dsq_move",
                         "scx_bpf_dsq_move_vtime", "scx_bpf_dispatch_from_dsq",
                         "scx_bpf_dispatch_vtime_from_dsq"})

KFUNC_PREFIXES = ("scx_bpf_", "bpf_iter_scx_dsq_", "bpf_cpumask_", "bpf_rbtree_", "bpf_list_",
                  "bpf_iter_num_")
KFUNCS = frozenset({"bpf_rcu_read_lock", "bpf_rcu_read_unlock", "bpf_task_acquire",
                    "bpf_task_release", "bpf_task_from_pid", "bpf_cgroup_acquire",
                    "bpf_cgroup_release", "bpf_cgroup_ancestor", "bpf_cgroup_from_id",
                    "bpf_task_under_cgroup", "bpf_obj_new_impl", "bpf_obj_drop_impl",
                    "bpf_refcount_acquire_impl", "bpf_percpu_obj_new_impl",
                    "bpf_percpu_obj_drop_impl"})
HELPERS = frozenset({
    "map_lookup_elem", "map_update_elem", "map_delete_elem", "map_push_elem", "map_pop_elem",
    "map_peek_elem", "map_lookup_percpu_elem", "probe_read_kernel", "probe_read_kernel_str",
    "ktime_get_ns",
    "ktime_get_boot_ns", "ktime_get_coarse_ns", "jiffies64", "get_smp_processor_id",
    "get_numa_node_id", "get_prandom_u32", "get_current_pid_tgid", "get_current_task",
    "get_current_task_btf", "loop", "for_each_map_elem", "spin_lock", "spin_unlock",
    "task_storage_get", "task_storage_delete", "cgrp_storage_get", "cgrp_storage_delete",
    "ringbuf_output", "ringbuf_reserve", "ringbuf_submit", "ringbuf_discard",
    "ringbuf_query", "timer_init", "timer_set_callback", "timer_start", "timer_cancel",
    "kptr_xchg", "this_cpu_ptr", "per_cpu_ptr", "snprintf",
})
HELPER_WHY = {"trace_printk": "it is debug output to the trace pipe",
              "trace_vprintk": "it is debug output to the trace pipe",
              "probe_write_user": "it writes user memory",
              "send_signal": "it signals processes",
              "override_return": "it changes kernel return values"}


def finding(msg: str, line: int | None = None, severity: str = ERROR,
            check: str = "") -> Finding:
    return Finding(STAGE, severity, msg, line, check)


@functools.lru_cache(maxsize=4)
def helper_names(vmlinux_h: Path) -> dict[int, str]:
    """``enum bpf_func_id`` of the lab kernel: helper number -> name."""
    text = vmlinux_h.read_text(errors="replace")
    return {int(n): name for name, n in re.findall(r"\bBPF_FUNC_(\w+) = (\d+),", text)}


# --- building -----------------------------------------------------------------------------

_DIAG = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):\d+: (?P<kind>error|warning): (?P<msg>.*)$",
                   re.M)


def build_findings(src: Path, err: BuildError) -> list[Finding]:
    out = []
    for m in _DIAG.finditer(err.output):
        line = int(m["line"]) if Path(m["file"]).name == src.name else None
        where = "" if line else f" (in {Path(m['file']).name}:{m['line']})"
        out.append(finding(f"does not compile with -Wall -Werror: {m['msg']}{where}", line,
                           check="build"))
    return out or [finding(f"does not compile: {err.output.strip()[:500] or err}",
                           check="build")]


# --- the object -----------------------------------------------------------------------------

def _call_name(obj: BpfObject, f: Function, insn: Insn, helpers: Mapping[int, str]) -> str:
    if insn.pc in f.calls:
        return f.calls[insn.pc]
    return helpers.get(insn.imm, f"helper#{insn.imm}") if insn.src == 0 else ""


def _is_kfunc(obj: BpfObject, name: str) -> bool:
    return any(s.name == name and s.undefined for s in obj.symbols)


def check_calls(obj: BpfObject, helpers: Mapping[int, str]) -> list[Finding]:
    out = []
    for f in obj.functions.values():
        for insn in f.insns:
            if not insn.is_call:
                continue
            name = _call_name(obj, f, insn, helpers)
            line = f.line_at(insn.pc)
            if insn.pc in f.calls and _is_kfunc(obj, name):
                if not (name in KFUNCS or name.startswith(KFUNC_PREFIXES)):
                    out.append(finding(f"{f.name} calls kfunc {name}, which is not on the "
                                       "allowlist of scheduler kfuncs", line, check="kfuncs"))
            elif insn.src == 0 and name not in HELPERS:
                why = HELPER_WHY.get(name, "it is not on the allowlist of scheduler helpers")
                out.append(finding(f"{f.name} calls the helper bpf_{name}: not allowed, {why}",
                                   line, check="helpers"))
    return out


def check_ops(obj: BpfObject, limits: Limits) -> list[Finding]:
    if not obj.ops_var:
        return [finding("not a sched_ext scheduler: the object defines no struct_ops map "
                        "(a `struct sched_ext_ops` in SEC(\".struct_ops.link\"))", check="ops")]
    out = []
    if not obj.ops_name:
        out.append(finding("the ops have no .name: the kernel refuses an unnamed scheduler",
                           check="ops"))
    tmo = obj.ops_fields.get("timeout_ms", 0)
    if tmo == 0:
        out.append(finding("timeout_ms is not set: set it (5000 to 30000) so the watchdog "
                           "ejects this scheduler quickly if it stalls", check="timeout"))
    elif tmo > limits.timeout_ms_max:
        out.append(finding(f"timeout_ms is {tmo}: at most {limits.timeout_ms_max} is allowed "
                           "(the kernel's watchdog ceiling)", check="timeout"))
    elif tmo < limits.timeout_ms_warn:
        out.append(finding(f"timeout_ms is {tmo}: under {limits.timeout_ms_warn} the kernel "
                           "warns and short pauses may eject the scheduler", severity=WARNING,
                           check="timeout"))
    missing = [op for op in obj.struct_ops.values() if op not in obj.functions]
    if missing:
        out.append(finding(f"ops point at functions not in the object: {', '.join(missing)}",
                           check="ops"))
    if "exit" not in obj.struct_ops:
        out.append(finding("no ops.exit: the exit reason will come from dmesg only "
                           "(use SCHEDCP_DEFINE_EXIT)", severity=WARNING, check="ops"))
    if obj.license not in ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL",
                           "Dual MIT/GPL", "Dual MPL/GPL"):
        out.append(finding(f"license {obj.license or '(none)'!r} is not GPL-compatible: "
                           "sched_ext kfuncs are GPL-only", check="license"))
    return out


@dataclass(frozen=True)
class Insert:
    func: str
    kfunc: str
    dsq: int | None
    slice_ns: int | None
    line: int | None
    dsq_bits: int = 0  # bits known set when the id itself is computed (LOCAL_ON | cpu)

    @property
    def builtin(self) -> bool:
        return bool((self.dsq if self.dsq is not None else self.dsq_bits) & DSQ_BUILTIN)

    @property
    def local_on(self) -> bool:
        bits = self.dsq if self.dsq is not None else self.dsq_bits
        return self.builtin and bool(bits & DSQ_LOCAL_ON)


def inserts_and_moves(obj: BpfObject, params: Mapping[str, int]
                      ) -> tuple[list[Insert], list[tuple[str, int | None]]]:
    """Every DSQ insert (function, DSQ id, slice) and every move (function, DSQ id)."""
    rodata = dict(obj.rodata)
    for name, value in params.items():
        if name in rodata and len(rodata[name]) in (1, 2, 4, 8):
            rodata[name] = (value & ((1 << (8 * len(rodata[name]))) - 1)).to_bytes(
                len(rodata[name]), "little")
    offsets = {s.name: s.value for s in obj.symbols if s.name in rodata}
    read = dataflow.rodata_reader(rodata, offsets)
    inserts, moves = [], []
    for f in obj.functions.values():
        for pc, st in dataflow.constants_at_calls(f, read).items():
            name = f.calls.get(pc, "")
            if name in INSERT_KFUNCS:
                dsq, sl = st.get(2), st.get(3)
                inserts.append(Insert(f.name, name, dsq if isinstance(dsq, int) else None,
                                      sl if isinstance(sl, int) else None, f.line_at(pc),
                                      dsq.mask if isinstance(dsq, dataflow.Bits) else 0))
            elif name in MOVE_KFUNCS:
                dsq = st.get(1) if name in ("scx_bpf_dsq_move_to_local", "scx_bpf_consume") \
                    else None
                moves.append((f.name, dsq if isinstance(dsq, int) else None))
    return inserts, moves


def _handoff(obj: BpfObject, helpers: Mapping[int, str]) -> set[str]:
    """Functions (subprograms included) that contain a hand-off call somewhere."""
    out = set()
    for f in obj.functions.values():
        for insn in f.insns:
            if insn.is_call and (f.calls.get(insn.pc) in HANDOFF_KFUNCS or (
                    insn.src == 0 and helpers.get(insn.imm) in HANDOFF_HELPERS)):
                out.add(f.name)
    return out


def check_enqueue(obj: BpfObject, helpers: Mapping[int, str]) -> list[Finding]:
    name = obj.struct_ops.get("enqueue")
    f = obj.functions.get(name or "")
    if f is None:
        return []  # the kernel's default enqueue inserts into the global DSQ
    handoff = _handoff(obj, helpers)
    subprogs_hand_off = any(fn.section == ".text" for fn in obj.functions.values()
                            if fn.name in handoff)

    def hands_on(insn: Insn) -> bool:
        if not insn.is_call:
            return False
        callee = f.calls.get(insn.pc)
        if callee in HANDOFF_KFUNCS:
            return True
        if insn.src == 0:
            return helpers.get(insn.imm) in HANDOFF_HELPERS
        return insn.src == 1 and subprogs_hand_off  # a call into a subprogram that inserts

    path = dataflow.drop_path(f, hands_on)
    if path is None:
        return []
    branches = [i for i in path if i.is_jump and not i.is_uncond]
    at = branches[-1] if branches else path[-1]
    why = "after the branch here" if branches else "on its only path"
    return [finding(f"ops.enqueue ({f.name}) can return without inserting the task into a "
                    f"DSQ or handing it on {why}: that task would never run again "
                    "(a silent drop)", f.line_at(at.pc), check="enqueue")]


def _dsq_text(dsq: int) -> str:
    return f"DSQ {dsq}" if dsq < DSQ_BUILTIN else f"DSQ {dsq:#x}"


def check_dispatch(obj: BpfObject, inserts: list[Insert], moves: list[tuple[str, int | None]],
                   helpers: Mapping[int, str]) -> list[Finding]:
    custom = [i for i in inserts if not i.builtin]
    queued = any(
        insn.is_call and insn.src == 0 and helpers.get(insn.imm) == "map_push_elem"
        for fn in obj.functions.values() for insn in fn.insns)
    if not custom and not queued:
        return []
    disp = obj.functions.get(obj.struct_ops.get("dispatch", ""))
    first = custom[0] if custom else None
    where = f"{_dsq_text(first.dsq)}" if first and first.dsq is not None else "its own queue"
    line = first.line if first else None
    if disp is None:
        return [finding(f"tasks are queued in {where} but there is no ops.dispatch: nothing "
                        "ever moves them to a CPU, so they starve until the watchdog ejects "
                        "the scheduler", line, check="dispatch")]
    disp_moves = [m for m in moves if m[0] == disp.name]
    disp_inserts = [i for i in inserts if i.func == disp.name]
    if not disp_moves and not disp_inserts:
        return [finding(f"tasks are queued in {where} but ops.dispatch ({disp.name}) never "
                        "moves a task to a CPU (no scx_bpf_dsq_move_to_local or insert): "
                        "dispatch cannot make progress", disp.line_at(0) or line,
                        check="dispatch")]
    if any(d is None for _, d in moves) or disp_inserts:
        return []
    consumed = {d for _, d in moves if d is not None}
    lost = sorted({i.dsq for i in custom if i.dsq is not None and i.dsq not in consumed})
    return [finding(f"tasks are inserted into {_dsq_text(d)} but no op ever moves tasks out "
                    f"of it (dispatch moves from {', '.join(map(_dsq_text, sorted(consumed)))})",
                    next(i.line for i in custom if i.dsq == d), check="dispatch")
            for d in lost]


def check_slices(inserts: list[Insert], limits: Limits) -> list[Finding]:
    out = []
    for ins in inserts:
        s = ins.slice_ns
        if s is None:
            continue
        if s == 0:
            out.append(finding(f"{ins.func} inserts tasks with a zero slice: they are "
                               "preempted as soon as they start", ins.line, check="slice"))
        elif s == SLICE_INF:
            out.append(finding(f"{ins.func} inserts tasks with an infinite slice "
                               "(SCX_SLICE_INF): a CPU hog would never be preempted",
                               ins.line, check="slice"))
        elif not limits.slice_min_ns <= s <= limits.slice_max_ns:
            out.append(finding(f"{ins.func} inserts tasks with a slice of {s / 1e6:g} ms, "
                               f"outside {limits.slice_min_ns / 1e6:g}.."
                               f"{limits.slice_max_ns / 1e6:g} ms", ins.line, check="slice"))
    if any(i.slice_ns is None for i in inserts):
        out.append(finding("some slices are computed at run time and were not checked "
                           "statically", severity=INFO, check="slice"))
    return out


def check_affinity(obj: BpfObject, inserts: list[Insert], source: str) -> list[Finding]:
    local_on = [i for i in inserts if i.local_on]
    aware = re.search(r"cpus_ptr|bpf_cpumask_test_cpu|nr_cpus_allowed|scx_bpf_pick_\w+_cpu"
                      r"|scx_bpf_select_cpu_dfl", source)
    if local_on and not aware:
        return [finding(f"{local_on[0].func} sends tasks to a chosen CPU (SCX_DSQ_LOCAL_ON) "
                        "without looking at the task's allowed CPUs (p->cpus_ptr)",
                        local_on[0].line, severity=WARNING, check="affinity")]
    return []


# --- the source -----------------------------------------------------------------------------

def strip_comments(src: str) -> str:
    """Comments and string literals blanked, newlines kept (so offsets map to lines)."""
    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', blank, src, flags=re.S)


def _paren(text: str, start: int) -> str:
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    return text[start + 1:]


_CONST = r"(?:\d+[uUlL]*|0x[0-9a-fA-F]+[uUlL]*|[A-Z][A-Z0-9_]*|sizeof\b)"


def check_loops(source: str, constants: set[str]) -> list[Finding]:
    """Every for/while loop has a compile-time bound (a heuristic: see the README)."""
    text = strip_comments(source)
    names = "|".join(map(re.escape, sorted(constants))) or "(?!)"
    # Comparing against zero bounds nothing by itself (`while (queued > 0)`): it counts only
    # when a `for` starts its variable at a constant and steps towards it.
    const = rf"(?:(?!0[uUlL]*\b){_CONST}|(?:{names})\b)"
    any_const = rf"(?:{_CONST}|(?:{names})\b)"
    bound = re.compile(rf"(?:<|<=|>|>=|!=)\s*\(?\s*{const}|\b{const}\s*\)?\s*(?:<|<=|>|>=|!=)")
    out = []
    for m in re.finditer(r"\b(for|while)\s*\(", text):
        body = _paren(text, m.end() - 1)
        cond = body.split(";")[1] if m.group(1) == "for" and body.count(";") >= 2 else body
        line = text.count("\n", 0, m.start()) + 1
        if "can_loop" in cond or bound.search(cond):
            continue
        init = body.split(";")[0] if m.group(1) == "for" else ""
        var = re.match(rf"\s*(?:\w+\s+)?(\w+)\s*=\s*{any_const}\s*$", init)
        if var and re.search(rf"\b{var.group(1)}\b\s*(?:<|<=|>|>=|!=)\s*{any_const}", cond):
            continue
        if cond.strip() in ("", "1", "true"):
            msg = f"`{m.group(1)}` loop has no exit condition: it may never terminate"
        else:
            msg = (f"`{m.group(1)}` loop condition `{' '.join(cond.split())}` has no "
                   "compile-time bound: compare against a constant or use bpf_for()")
        out.append(finding(msg, line, check="loops"))
    return out


# --- the stage ------------------------------------------------------------------------------

def int_params(params: Mapping[str, str]) -> dict[str, int]:
    out = {}
    for k, v in params.items():
        try:
            out[k] = int(v, 0)
        except ValueError:
            continue
    return out


def check_params(obj: BpfObject, params: Mapping[str, str]) -> list[Finding]:
    known = ", ".join(sorted(obj.rodata)) or "none"
    return [finding(f"parameter {k!r} is not a const volatile global of this scheduler "
                    f"(tunables: {known})", check="params")
            for k in params if k not in obj.rodata]


def analyze(obj: BpfObject, source: str, params: Mapping[str, str],
            limits: Limits | None = None, vmlinux_h: Path | None = None) -> list[Finding]:
    """All object and source checks on a built object (the build itself is separate)."""
    limits = limits or Limits()
    helpers = helper_names(vmlinux_h or kernel.current().vmlinux_h)
    found = check_ops(obj, limits) + check_params(obj, params)
    if not obj.ops_var:
        return found
    inserts, moves = inserts_and_moves(obj, int_params(params))
    found += check_calls(obj, helpers)
    found += check_enqueue(obj, helpers)
    found += check_dispatch(obj, inserts, moves, helpers)
    found += check_slices(inserts, limits)
    found += check_affinity(obj, inserts, strip_comments(source))
    found += check_loops(source, set(obj.rodata))
    return found


def run(source: Path, params: Mapping[str, str], out_dir: Path,
        limits: Limits | None = None) -> tuple[StageVerdict, Path | None]:
    """Build and check ``source``; returns the verdict and the object (None if no build)."""
    t0 = time.monotonic()
    try:
        built = build_object(source, out_dir)
    except BuildError as err:
        return stage_result(STAGE, build_findings(source, err), time.monotonic() - t0), None
    try:
        obj = bpfobj.load(built.path)
    except bpfobj.ObjectError as exc:
        return stage_result(STAGE, [finding(str(exc), check="object")],
                            time.monotonic() - t0), built.path
    found = analyze(obj, source.read_text(errors="replace"), params, limits)
    details = {"ops": obj.ops_name, "struct_ops": obj.struct_ops,
               "timeout_ms": obj.ops_fields.get("timeout_ms", 0)}
    return stage_result(STAGE, found, time.monotonic() - t0, details), built.path
