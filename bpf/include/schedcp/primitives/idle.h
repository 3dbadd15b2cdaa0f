/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Idle-CPU picking for ops.select_cpu.
 *
 * schedcp_select_idle_direct(): the kernel's default topology-aware choice; when the CPU
 * it picked is idle, the task goes straight to that CPU's local queue and never waits in
 * a shared one. Most policies start their select_cpu with it.
 *
 * schedcp_lowest_idle_cpu(): the lowest-numbered idle CPU among the first `limit`, for
 * policies that pack work onto few CPUs.
 */
#pragma once

#include <schedcp/scx.bpf.h>

#define SCHEDCP_MAX_CPUS 256

static __always_inline s32 schedcp_select_idle_direct(struct task_struct *p, s32 prev_cpu,
						      u64 wake_flags, u64 slice_ns)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

/* Claims the CPU it returns (clears its idle bit); -1 when none of them is idle. */
static __always_inline s32 schedcp_lowest_idle_cpu(struct task_struct *p, u32 limit)
{
	u32 nr = scx_bpf_nr_cpu_ids();

	for (u32 cpu = 0; cpu < SCHEDCP_MAX_CPUS && cpu < nr && cpu < limit; cpu++) {
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (scx_bpf_test_and_clear_cpu_idle(cpu))
			return cpu;
	}
	return -1;
}
