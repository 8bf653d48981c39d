"""vLLM worker extensions: each module here is imported by the vLLM server as a top-level
module (this folder on its PYTHONPATH), never through the longhorizon package."""
