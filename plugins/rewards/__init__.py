"""First-party rewards: scores of one generated answer against its item's ground truth (GRPO)."""
