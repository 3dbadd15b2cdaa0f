/* SPDX-License-Identifier: GPL-2.0 */
/*
 * locality: per-CPU queues with work stealing.
 *
 * A task that runs again on the CPU it ran on finds its data still in that CPU's caches.
 * Each CPU has its own queue; a task goes back to the queue of the CPU it last ran on
 * (or an idle CPU at wakeup, preferring its previous one) unless another CPU's queue is
 * shorter: then to that one, so queues of busy CPUs stay even and the odd task rotates
 * (2 and 3 hogs on two CPUs would otherwise get 1/2 and 1/3 of a CPU for ever). A CPU
 * whose queue is empty steals from the next other queue (round robin) holding at least
 * steal_min tasks, so no CPU idles while work waits elsewhere. One shared queue would
 * bounce every task between CPUs.
 */
#include <schedcp/scx.bpf.h>
#include <schedcp/primitives/idle.h>
#include <schedcp/primitives/dsq.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_us = 20000;
const volatile u32 steal_min = 1;

/* The queue of CPU n is DSQ n. */
#define CPU_DSQ(cpu) ((u64)(cpu))

/* The previous CPU when idle (warm caches), else any idle CPU the kernel prefers. */
s32 BPF_STRUCT_OPS(locality_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	if (scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_us * NSEC_PER_USEC, 0);
		return prev_cpu;
	}
	return schedcp_select_idle_direct(p, prev_cpu, wake_flags, slice_us * NSEC_PER_USEC);
}

/* Back to the queue of the CPU the task is on, or a shorter one; wake that CPU if it sleeps. */
void BPF_STRUCT_OPS(locality_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = schedcp_shorter_queue(p, scx_bpf_task_cpu(p), CPU_DSQ(0));

	scx_bpf_dsq_insert(p, CPU_DSQ(cpu), slice_us * NSEC_PER_USEC, enq_flags);
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	/* A long queue: wake an idle CPU so it can steal. */
	if (scx_bpf_dsq_nr_queued(CPU_DSQ(cpu)) > (s32)steal_min) {
		s32 idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		if (idle >= 0)
			scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
	}
}

/* Own queue first; an empty one steals. */
void BPF_STRUCT_OPS(locality_dispatch, s32 cpu, struct task_struct *prev)
{
	if (scx_bpf_dsq_move_to_local(CPU_DSQ(cpu)))
		return;
	schedcp_steal(cpu, CPU_DSQ(0), steal_min);
}

s32 BPF_STRUCT_OPS_SLEEPABLE(locality_init)
{
	return schedcp_create_dsqs(CPU_DSQ(0), scx_bpf_nr_cpu_ids());
}

SCHEDCP_DEFINE_EXIT(locality)

SEC(".struct_ops.link")
struct sched_ext_ops locality_ops = {
	.select_cpu	= (void *)locality_select_cpu,
	.enqueue	= (void *)locality_enqueue,
	.dispatch	= (void *)locality_dispatch,
	.init		= (void *)locality_init,
	.exit		= (void *)locality_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_locality",
};
