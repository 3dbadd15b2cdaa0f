/* SPDX-License-Identifier: GPL-2.0 */
/*
 * eject_on_comm: fifo, until a task named trigger_comm shows up; then scx_bpf_error(),
 * which makes the kernel eject the scheduler. For testing the daemon's canary only.
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

const volatile char trigger_comm[16] = "schedcp-eject";

/* Byte by byte over a fixed length: the loop is bounded and unrolled. */
static bool is_trigger(struct task_struct *p)
{
	char comm[16];

	if (bpf_probe_read_kernel_str(comm, sizeof(comm), p->comm) < 0)
		return false;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (comm[i] != trigger_comm[i])
			return false;
		if (!comm[i])
			return true;
	}
	return true;
}

/*
 * Every wake-up passes here, enqueue does not: with an idle CPU the default select_cpu
 * dispatches the waking task directly, so a trigger that woke on a quiet machine went
 * unseen (a CI run's canary waited in vain).
 */
void BPF_STRUCT_OPS(eject_runnable, struct task_struct *p, u64 enq_flags)
{
	if (is_trigger(p))
		scx_bpf_error("task %d named the trigger", p->pid);
}

/* Everyone joins the global queue. */
void BPF_STRUCT_OPS(eject_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, 5 * NSEC_PER_MSEC, enq_flags);
}

SCHEDCP_DEFINE_EXIT(eject)

SEC(".struct_ops.link")
struct sched_ext_ops eject_ops = {
	.runnable	= (void *)eject_runnable,
	.enqueue	= (void *)eject_enqueue,
	.exit		= (void *)eject_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_eject_on_comm",
};
