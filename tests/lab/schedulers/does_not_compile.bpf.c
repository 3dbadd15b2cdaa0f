/* SPDX-License-Identifier: GPL-2.0 */
/* Deliberately broken: uses an identifier that does not exist. */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

void BPF_STRUCT_OPS(broken_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice_that_does_not_exist, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops broken_ops = {
	.enqueue	= (void *)broken_enqueue,
	.name		= "schedcp_broken",
};
