"""Search limits shared by the planner, the serving simulator and the CLI (no imports: the CLI
reads them when it starts, before any command loads numpy)."""

MAX_RESOLUTION = 4096  # px: the top of solve="resolution"'s search by default
MAX_BATCH = 4096  # images: the top of solve="batch"'s search; the largest batch serve simulates
MAX_DEVICES = 4096  # the most devices serve's fleet search tries
