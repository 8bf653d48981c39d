"""End-to-end jobs that chain the pipeline's parts (`longhorizon run`)."""
