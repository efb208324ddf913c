"""Unit tests of ``gateway.graph`` (cursors, listing), in process, without servers."""
