/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ljf: longest job first, for long-tail batch work.
 *
 * When one job is much longer than the rest, the batch ends when that job ends. Fair
 * sharing gives it 1/N of the machine while the short jobs run, so it starts its real
 * work late. LJF runs long jobs first, on their own CPUs and with long slices, and lets
 * the short jobs fill the remaining CPUs.
 *
 * A task is long when its comm is in long_comms, when it sits in a cgroup named in
 * long_cgroups, or when it has used more than long_after_ms of CPU. Long tasks queue in
 * arrival order (they take turns, a long slice each); short tasks share equally by
 * virtual time, and one that wakes runs soon. While short work is waiting, long tasks hold at most
 * nr_cpus - reserve_cpus CPUs, so short jobs always progress; neither queue waits longer
 * than starve_ms. A long task that wakes while every CPU is busy takes one from a short
 * task (wake_preempt). Per-CPU kthreads run before anything else on their CPU.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/task_ctx.h>
#include <schedcp/primitives/runtime.h>
#include <schedcp/primitives/comm.h>
#include <schedcp/primitives/cgroup.h>
#include <schedcp/primitives/dsq.h>
#include <schedcp/primitives/idle.h>
#include <schedcp/primitives/kthread.h>

char _license[] SEC("license") = "GPL";

const volatile char long_comms[64] = "";
const volatile char long_cgroups[64] = "";
const volatile u64 long_after_ms = 1000;
const volatile u64 slice_us = 20000;
const volatile u64 long_slice_us = 200000;
const volatile u32 reserve_cpus = 1;
const volatile u64 starve_ms = 500;
const volatile bool wake_preempt = true;

#define LONG_DSQ 0
#define SHORT_DSQ 1

struct task_ctx {
	struct schedcp_runtime rt;
	bool is_long;
};

SCHEDCP_TASK_CTX(struct task_ctx)

/* CPUs running a long task now; short work keeps the others while it waits. */
static s32 nr_long_running;

/* Per CPU: is a short task running there (a CPU a waking long task may take)? */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, bool);
} short_running SEC(".maps");
static u64 short_served_ns;
static u64 long_served_ns;
/* The virtual time of the short task that most recently started running. */
static u64 short_vtime_now;

/* Long by configuration (comm or cgroup) or by the CPU time it has already used. */
static bool classify(struct task_struct *p, struct task_ctx *tctx)
{
	if (tctx->is_long)
		return true;
	if (long_after_ms && tctx->rt.total_ns >= long_after_ms * NSEC_PER_MSEC)
		return true;
	return schedcp_comm_in_list(p, long_comms, sizeof(long_comms)) ||
	       schedcp_task_in_cgroup(p, long_cgroups, sizeof(long_cgroups));
}

static u32 long_cap(void)
{
	u32 nr = scx_bpf_nr_cpu_ids();

	return nr > reserve_cpus ? nr - reserve_cpus : 1;
}

static bool runs_short(s32 cpu)
{
	u32 zero = 0;
	bool *s = bpf_map_lookup_percpu_elem(&short_running, &zero, cpu);

	return s && *s;
}

/*
 * A long job that reads or writes sleeps and wakes again and again. Waiting out a short
 * task's slice at every wakeup would starve it of the CPU it is owed and make it the last
 * job to finish, so it takes a CPU from a short task: its own CPU first, for its cache.
 */
static void preempt_for_long(struct task_struct *p)
{
	s32 prev = scx_bpf_task_cpu(p);
	u32 nr = scx_bpf_nr_cpu_ids();

	if (nr_long_running >= (s32)long_cap())
		return;
	if (runs_short(prev)) {
		scx_bpf_kick_cpu(prev, SCX_KICK_PREEMPT);
		return;
	}
	for (u32 cpu = 0; cpu < SCHEDCP_MAX_CPUS && cpu < nr; cpu++) {
		if (bpf_cpumask_test_cpu(cpu, p->cpus_ptr) && runs_short(cpu)) {
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
			return;
		}
	}
}

/* An idle CPU takes a waking short task directly; long tasks go through the queue. */
s32 BPF_STRUCT_OPS(ljf_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx && tctx->is_long)
		return prev_cpu;
	return schedcp_select_idle_direct(p, prev_cpu, wake_flags, slice_us * NSEC_PER_USEC);
}

/*
 * Long tasks in arrival order: they take turns rather than starve one another. Short tasks
 * by virtual time: a short job's start sleeps again and again (exec, reads, pipes), and at
 * the tail of a FIFO each wakeup would wait for every other short job's slice. A sleeper's
 * credit is capped at one slice, so CPU-bound short jobs still share fairly.
 */
void BPF_STRUCT_OPS(ljf_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 slice = slice_us * NSEC_PER_USEC;
	u64 vtime = p->scx.dsq_vtime;

	/* Never behind a long task: I/O completes through them. */
	if (schedcp_kthread_first(p, slice, enq_flags))
		return;
	if (tctx && (tctx->is_long = classify(p, tctx))) {
		s32 cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		scx_bpf_dsq_insert(p, LONG_DSQ, long_slice_us * NSEC_PER_USEC, enq_flags);
		/* Wake an idle CPU for it: otherwise it waits for a busy CPU's slice to end. */
		if (cpu >= 0)
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		else if (wake_preempt && (enq_flags & SCX_ENQ_WAKEUP))
			preempt_for_long(p);
		return;
	}
	if (time_before(vtime, short_vtime_now - slice))
		vtime = short_vtime_now - slice;
	scx_bpf_dsq_insert_vtime(p, SHORT_DSQ, slice, vtime, enq_flags);
}

static bool take_long(u64 now)
{
	if (scx_bpf_dsq_move_to_local(LONG_DSQ)) {
		long_served_ns = now;
		return true;
	}
	return false;
}

static bool take_short(u64 now)
{
	if (scx_bpf_dsq_move_to_local(SHORT_DSQ)) {
		short_served_ns = now;
		return true;
	}
	return false;
}

/*
 * Long work first, within its CPU cap. A long task whose slice ran out keeps its CPU
 * (its slice is refilled) unless another long task waits or a queue is starving: short
 * jobs never preempt it.
 */
void BPF_STRUCT_OPS(ljf_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 now = bpf_ktime_get_ns();
	u64 starve = starve_ms * NSEC_PER_MSEC;
	struct task_ctx *tctx = prev ? task_ctx(prev) : NULL;
	bool prev_long = tctx && tctx->is_long && (prev->scx.flags & SCX_TASK_QUEUED);
	s32 others_long = nr_long_running - (prev_long ? 1 : 0);
	bool shorts_waiting = scx_bpf_dsq_nr_queued(SHORT_DSQ) > 0;
	bool long_ok = !shorts_waiting || others_long < (s32)long_cap();

	if (shorts_waiting && now - short_served_ns > starve && take_short(now))
		return;
	if (scx_bpf_dsq_nr_queued(LONG_DSQ) && now - long_served_ns > starve && take_long(now))
		return;
	if (long_ok && prev_long && !scx_bpf_dsq_nr_queued(LONG_DSQ)) {
		prev->scx.slice = long_slice_us * NSEC_PER_USEC;
		return;
	}
	if (long_ok && take_long(now))
		return;
	if (take_short(now))
		return;
	take_long(now);
}

void BPF_STRUCT_OPS(ljf_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	u32 zero = 0;
	bool *short_now = bpf_map_lookup_elem(&short_running, &zero);

	if (short_now)
		*short_now = !(tctx && tctx->is_long);
	if (!tctx)
		return;
	schedcp_rt_running(&tctx->rt, bpf_ktime_get_ns());
	if (tctx->is_long)
		__sync_fetch_and_add(&nr_long_running, 1);
	else if (time_before(short_vtime_now, p->scx.dsq_vtime))
		short_vtime_now = p->scx.dsq_vtime;
}

void BPF_STRUCT_OPS(ljf_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 used;
	u32 zero = 0;
	bool *short_now = bpf_map_lookup_elem(&short_running, &zero);

	if (short_now)
		*short_now = false;
	if (!tctx)
		return;
	used = schedcp_rt_stopping(&tctx->rt, bpf_ktime_get_ns(), runnable, 3);
	if (tctx->is_long)
		__sync_fetch_and_add(&nr_long_running, -1);
	else	/* equal shares: charged by weight, a nice-19 kthread (khugepaged) behind 39
		 * short jobs waited past the watchdog's timeout */
		p->scx.dsq_vtime += used;
}

s32 BPF_STRUCT_OPS(ljf_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	return task_ctx_create(p) ? 0 : -ENOMEM;
}

/* New tasks start at the short clock: no free credit for forking. */
void BPF_STRUCT_OPS(ljf_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = short_vtime_now;
}

/* Its own DSQs: the built-in global one would mix the two classes. */
s32 BPF_STRUCT_OPS_SLEEPABLE(ljf_init)
{
	return schedcp_create_dsqs(LONG_DSQ, 2);
}

SCHEDCP_DEFINE_EXIT(ljf)

SEC(".struct_ops.link")
struct sched_ext_ops ljf_ops = {
	.select_cpu	= (void *)ljf_select_cpu,
	.enqueue	= (void *)ljf_enqueue,
	.dispatch	= (void *)ljf_dispatch,
	.running	= (void *)ljf_running,
	.stopping	= (void *)ljf_stopping,
	.init_task	= (void *)ljf_init_task,
	.enable		= (void *)ljf_enable,
	.init		= (void *)ljf_init,
	.exit		= (void *)ljf_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_ljf",
};
