/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dispatch-queue helpers.
 *
 * schedcp_create_dsqs(): create DSQs first..first+n-1 from ops.init.
 * schedcp_dispatch_two(): serve a high-priority queue first, but never leave the
 *   low-priority one unserved longer than starve_ns, so strict priorities cannot turn
 *   into a watchdog stall.
 * schedcp_steal(): take a task from another CPU's queue (work stealing).
 * schedcp_shorter_queue(): the allowed CPU whose queue is shorter than the task's own.
 */
#pragma once

#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/idle.h>

static __always_inline s32 schedcp_create_dsqs(u64 first, u32 n)
{
	for (u32 i = 0; i < SCHEDCP_MAX_CPUS && i < n; i++) {
		s32 err = scx_bpf_create_dsq(first + i, -1);

		if (err)
			return err;
	}
	return 0;
}

static __always_inline bool schedcp_dispatch_two(u64 hi, u64 lo, u64 *lo_served_ns,
						 u64 starve_ns, u64 now)
{
	if (!scx_bpf_dsq_nr_queued(lo)) {
		*lo_served_ns = now;
		return scx_bpf_dsq_move_to_local(hi);
	}
	if (now - *lo_served_ns > starve_ns || !scx_bpf_dsq_move_to_local(hi)) {
		if (scx_bpf_dsq_move_to_local(lo)) {
			*lo_served_ns = now;
			return true;
		}
		return scx_bpf_dsq_move_to_local(hi);
	}
	return true;
}

/*
 * Steal from the next other per-CPU queue (round robin from self + 1) holding at least
 * min_queued tasks. Round robin rather than "the fullest": it keeps the verifier's work
 * linear in the number of CPUs.
 */
static __always_inline bool schedcp_steal(s32 self, u64 first_dsq, u32 min_queued)
{
	u32 nr = scx_bpf_nr_cpu_ids();

	for (u32 i = 1; i < SCHEDCP_MAX_CPUS && i < nr; i++) {
		u32 victim = ((u32)self + i) % nr;

		if (scx_bpf_dsq_nr_queued(first_dsq + victim) >= (s32)min_queued &&
		    scx_bpf_dsq_move_to_local(first_dsq + victim))
			return true;
	}
	return false;
}

/*
 * The CPU among p's allowed ones whose per-CPU queue holds fewer tasks than own's (p not
 * counted), the shortest such; own when none does. Stealing only evens queues when one
 * runs dry: two busy CPUs holding 2 and 3 hogs would give them 1/2 and 1/3 of a CPU each
 * for ever. Moving a task at enqueue to a shorter queue rotates the odd one out instead.
 */
static __always_inline s32 schedcp_shorter_queue(struct task_struct *p, s32 own, u64 first_dsq)
{
	u32 nr = scx_bpf_nr_cpu_ids();
	s32 best = own, best_n = scx_bpf_dsq_nr_queued(first_dsq + own);

	for (u32 cpu = 0; cpu < SCHEDCP_MAX_CPUS && cpu < nr && best_n > 0; cpu++) {
		s32 n;

		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		n = scx_bpf_dsq_nr_queued(first_dsq + cpu);
		if (n < best_n) {
			best = cpu;
			best_n = n;
		}
	}
	return best;
}
