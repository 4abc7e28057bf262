"""Method `axolotl`: render Axolotl's YAML from our config, check it in Axolotl's own venv,
run `axolotl train` there, and read its outputs back (see methods/axolotl.py)."""
