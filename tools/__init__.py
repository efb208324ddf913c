"""The project's own tools, apart from the gateway: the documentation's generated pages
(``docs_hooks``), the schema's change control (``schema_check``) and releasing (``release``)."""
