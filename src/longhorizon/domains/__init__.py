"""Task domains: per-domain corpora, task proposers, verifiers and scripted experts."""
