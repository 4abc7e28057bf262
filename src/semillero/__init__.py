"""semillero: reproducible fine-tuning studies of small Spanish language models."""

import logging

# bitsandbytes logs a warning at import on CPUs with AVX512-BF16 when the `kernels` package
# (which downloads its kernel from the hub) is absent; its own fallback is used, so the line
# only adds noise to every command. Only that message is filtered.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: "kernels-community" not in record.getMessage()
)
