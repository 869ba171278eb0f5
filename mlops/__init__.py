"""The ML workload of the platform: AML specs, model code, and the post-deploy lifecycle."""
