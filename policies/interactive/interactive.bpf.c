/* SPDX-License-Identifier: GPL-2.0 */
/*
 * interactive: wakeup latency boost for tasks that sleep often.
 *
 * A desktop beside a build: the editor and the compositor wake up, work for a moment and
 * sleep again, while compilers run until their slice ends. The average CPU burst between
 * sleeps tells them apart. Tasks whose average burst is below burst_us are interactive:
 * they queue ahead of everything else with a short slice, and when they wake while every
 * CPU is busy they preempt a CPU hog. Hogs get long slices (fewer switches, better
 * caches) and queue in arrival order; they are served at least every starve_ms.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/task_ctx.h>
#include <schedcp/primitives/runtime.h>
#include <schedcp/primitives/idle.h>
#include <schedcp/primitives/dsq.h>

char _license[] SEC("license") = "GPL";

const volatile u64 burst_us = 2000;
const volatile u64 interactive_slice_us = 3000;
const volatile u64 hog_slice_us = 40000;
const volatile bool preempt = true;
const volatile u64 starve_ms = 100;

#define FAST_DSQ 0
#define HOG_DSQ 1

struct task_ctx {
	struct schedcp_runtime rt;
};

SCHEDCP_TASK_CTX(struct task_ctx)

/* Per CPU: is a hog running there (a CPU an interactive task may take)? */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, bool);
} hog_running SEC(".maps");

static u64 hog_served_ns;

static bool is_interactive(struct task_ctx *tctx)
{
	/* A task that has never slept is a hog until it shows otherwise. */
	return tctx && tctx->rt.bursts && schedcp_rt_expected_burst(&tctx->rt) < burst_us * NSEC_PER_USEC;
}

static u64 slice_of(struct task_ctx *tctx)
{
	return (is_interactive(tctx) ? interactive_slice_us : hog_slice_us) * NSEC_PER_USEC;
}

s32 BPF_STRUCT_OPS(interactive_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return schedcp_select_idle_direct(p, prev_cpu, wake_flags, slice_of(task_ctx(p)));
}

/* Interactive first. A waking interactive task with no idle CPU preempts a hog's CPU. */
void BPF_STRUCT_OPS(interactive_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	u32 zero = 0;
	bool *hog;

	if (!is_interactive(tctx)) {
		scx_bpf_dsq_insert(p, HOG_DSQ, slice_of(tctx), enq_flags);
		return;
	}
	scx_bpf_dsq_insert(p, FAST_DSQ, slice_of(tctx), enq_flags);
	if (!preempt || !(enq_flags & SCX_ENQ_WAKEUP))
		return;
	hog = bpf_map_lookup_percpu_elem(&hog_running, &zero, cpu);
	if (hog && *hog)
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
}

void BPF_STRUCT_OPS(interactive_dispatch, s32 cpu, struct task_struct *prev)
{
	schedcp_dispatch_two(FAST_DSQ, HOG_DSQ, &hog_served_ns, starve_ms * NSEC_PER_MSEC,
			     bpf_ktime_get_ns());
}

void BPF_STRUCT_OPS(interactive_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	u32 zero = 0;
	bool *hog = bpf_map_lookup_elem(&hog_running, &zero);

	if (tctx)
		schedcp_rt_running(&tctx->rt, bpf_ktime_get_ns());
	if (hog)
		*hog = !is_interactive(tctx);
}

void BPF_STRUCT_OPS(interactive_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);
	u32 zero = 0;
	bool *hog = bpf_map_lookup_elem(&hog_running, &zero);

	if (tctx)
		schedcp_rt_stopping(&tctx->rt, bpf_ktime_get_ns(), runnable, 2);
	if (hog)
		*hog = false;
}

s32 BPF_STRUCT_OPS(interactive_init_task, struct task_struct *p,
		   struct scx_init_task_args *args)
{
	return task_ctx_create(p) ? 0 : -ENOMEM;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(interactive_init)
{
	return schedcp_create_dsqs(FAST_DSQ, 2);
}

SCHEDCP_DEFINE_EXIT(interactive)

SEC(".struct_ops.link")
struct sched_ext_ops interactive_ops = {
	.select_cpu	= (void *)interactive_select_cpu,
	.enqueue	= (void *)interactive_enqueue,
	.dispatch	= (void *)interactive_dispatch,
	.running	= (void *)interactive_running,
	.stopping	= (void *)interactive_stopping,
	.init_task	= (void *)interactive_init_task,
	.init		= (void *)interactive_init,
	.exit		= (void *)interactive_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_interactive",
};
