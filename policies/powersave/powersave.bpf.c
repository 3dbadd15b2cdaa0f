/* SPDX-License-Identifier: GPL-2.0 */
/*
 * powersave: pack work onto as few CPUs as possible while load is low.
 *
 * Idle CPUs can enter deep sleep states only if nothing wakes them. This policy keeps
 * work on the first pack_cpus CPUs: waking tasks go to an idle CPU among those, and the
 * other CPUs take work from the shared queue only when more than spill_queued tasks wait
 * (the packed CPUs are saturated). Tasks that cannot run on the packed CPUs (per-CPU
 * kernel threads, pinned tasks) go straight to their own CPU.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/idle.h>

char _license[] SEC("license") = "GPL";

const volatile u32 pack_cpus = 1;
const volatile u32 spill_queued = 2;
const volatile u64 slice_us = 20000;

#define SHARED_DSQ 0

static bool packed(s32 cpu)
{
	return cpu >= 0 && (u32)cpu < pack_cpus;
}

/* An idle packed CPU if there is one; otherwise stay put and let enqueue decide. */
s32 BPF_STRUCT_OPS(powersave_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu = schedcp_lowest_idle_cpu(p, pack_cpus);

	if (cpu >= 0) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_us * NSEC_PER_USEC, 0);
		return cpu;
	}
	return prev_cpu;
}

void BPF_STRUCT_OPS(powersave_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 nr = scx_bpf_nr_cpu_ids();
	u32 limit = pack_cpus < nr ? pack_cpus : nr;
	bool can_pack = false;

	for (u32 cpu = 0; cpu < SCHEDCP_MAX_CPUS && cpu < limit; cpu++)
		if (bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			can_pack = true;
	/* Pinned elsewhere: it can only run where it is. */
	if (!can_pack) {
		s32 cpu = scx_bpf_task_cpu(p);

		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice_us * NSEC_PER_USEC, enq_flags);
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return;
	}
	scx_bpf_dsq_insert(p, SHARED_DSQ, slice_us * NSEC_PER_USEC, enq_flags);
	/* Saturated: wake one more CPU to help. */
	if (scx_bpf_dsq_nr_queued(SHARED_DSQ) > (s32)spill_queued) {
		s32 cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		if (cpu >= 0)
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

/* Packed CPUs always take work; the others only while the queue is long. */
void BPF_STRUCT_OPS(powersave_dispatch, s32 cpu, struct task_struct *prev)
{
	if (packed(cpu) || scx_bpf_dsq_nr_queued(SHARED_DSQ) > (s32)spill_queued)
		scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(powersave_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCHEDCP_DEFINE_EXIT(powersave)

SEC(".struct_ops.link")
struct sched_ext_ops powersave_ops = {
	.select_cpu	= (void *)powersave_select_cpu,
	.enqueue	= (void *)powersave_enqueue,
	.dispatch	= (void *)powersave_dispatch,
	.init		= (void *)powersave_init,
	.exit		= (void *)powersave_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_powersave",
};
