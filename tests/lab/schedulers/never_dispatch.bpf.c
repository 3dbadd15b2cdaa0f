/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Deliberately broken: every task goes to a private DSQ that dispatch never consumes.
 * The kernel's watchdog must eject it after timeout_ms as a runnable-task stall (the lab
 * test), and the verifier's static stage must refuse it first: dispatch cannot make
 * progress (the verifier's broken corpus links here as never_dispatches.bpf.c).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

#define BLACKHOLE_DSQ 42

s32 BPF_STRUCT_OPS_SLEEPABLE(never_init)
{
	return scx_bpf_create_dsq(BLACKHOLE_DSQ, -1);
}

void BPF_STRUCT_OPS(never_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, BLACKHOLE_DSQ, SCX_SLICE_DFL, enq_flags);
}

/* Never moves anything to a local DSQ: runnable tasks wait forever. */
void BPF_STRUCT_OPS(never_dispatch, s32 cpu, struct task_struct *prev)
{
}

SCHEDCP_DEFINE_EXIT(never)

SEC(".struct_ops.link")
struct sched_ext_ops never_ops = {
	.enqueue	= (void *)never_enqueue,
	.dispatch	= (void *)never_dispatch,
	.init		= (void *)never_init,
	.exit		= (void *)never_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_never",
};
