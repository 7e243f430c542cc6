"""First-party grounding stages: how the prompt conditions the video tokens before compression."""
