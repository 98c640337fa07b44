"""Date formats of the audit site (Django reads them through ``FORMAT_MODULE_PATH``)."""
