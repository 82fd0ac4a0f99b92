"""Report templates, shipped in the wheel as ``pcapsleuth._reports``."""
