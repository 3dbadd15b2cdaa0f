/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Runtime accounting: how much CPU a task used, in total and per burst.
 *
 * A burst is the CPU time between a wakeup and the next sleep. Tasks that sleep often
 * (interactive, I/O-bound) have short bursts; CPU hogs have bursts as long as they are
 * allowed to run. avg_burst_ns is an exponentially weighted average of the last bursts.
 *
 * Call schedcp_rt_running() from ops.running and schedcp_rt_stopping() from ops.stopping.
 */
#pragma once

#include <schedcp/scx.bpf.h>

struct schedcp_runtime {
	u64 started_ns;		/* when the task last started running */
	u64 total_ns;		/* CPU time over the task's life under this scheduler */
	u64 burst_ns;		/* CPU time since the last wakeup */
	u64 avg_burst_ns;	/* EWMA of finished bursts */
	u64 bursts;		/* number of finished bursts (sleeps) */
};

/* new = old + (sample - old) / 2^shift; shift 3 weighs the newest sample 1/8. */
static __always_inline u64 schedcp_ewma(u64 old, u64 sample, u32 shift)
{
	if (sample >= old)
		return old + ((sample - old) >> shift);
	return old - ((old - sample) >> shift);
}

static __always_inline void schedcp_rt_running(struct schedcp_runtime *rt, u64 now)
{
	rt->started_ns = now;
}

/* Charge the time since ops.running; a task that stops without staying runnable slept. */
static __always_inline u64 schedcp_rt_stopping(struct schedcp_runtime *rt, u64 now,
					       bool runnable, u32 shift)
{
	u64 used = rt->started_ns && now > rt->started_ns ? now - rt->started_ns : 0;

	rt->total_ns += used;
	rt->burst_ns += used;
	if (!runnable) {
		rt->avg_burst_ns = rt->bursts ? schedcp_ewma(rt->avg_burst_ns, rt->burst_ns, shift)
					      : rt->burst_ns;
		rt->bursts++;
		rt->burst_ns = 0;
	}
	return used;
}

/* The burst the task is likely in now: the average, or the current one if already longer. */
static __always_inline u64 schedcp_rt_expected_burst(const struct schedcp_runtime *rt)
{
	return rt->burst_ns > rt->avg_burst_ns ? rt->burst_ns : rt->avg_burst_ns;
}
