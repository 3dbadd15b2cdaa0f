/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-CPU kernel threads first.
 *
 * A per-CPU kthread (kworker, ksoftirqd) can run on one CPU only, and I/O completes through
 * such threads: a virtio-fs reply, for one, is finished by a kworker on the CPU that took
 * its interrupt. A policy that lets one task hold a CPU (long refilled slices, strict
 * priorities) must not queue them behind it: every task sleeping on that I/O would wait as
 * long as the holder runs, while a starvation guard that looks at a shared queue sees it
 * served by the other CPUs. schedcp_kthread_first() puts such a thread at the head of its
 * CPU's local queue and preempts whatever runs there; it runs for microseconds.
 */
#pragma once

#include <schedcp/scx.bpf.h>

#define PF_KTHREAD 0x00200000	/* include/linux/sched.h: not in BTF, a #define */

/* From ops.enqueue: true if `p` was a per-CPU kthread and is now queued to run next. */
static __always_inline bool schedcp_kthread_first(struct task_struct *p, u64 slice_ns,
						  u64 enq_flags)
{
	if (!(p->flags & PF_KTHREAD) || p->nr_cpus_allowed != 1)
		return false;
	/* SCX_DSQ_LOCAL from ops.enqueue is the CPU the task is queued on: its only one. */
	scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
	return true;
}
