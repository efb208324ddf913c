"""The change feed behind GraphQL subscriptions: pollers ask the sources what changed
(:mod:`.poller`), backends keep their state and pass events between processes
(:mod:`.backends`), the hub hands events to this process's subscribers (:mod:`.hub`), and
:class:`~gateway.changes.feed.ChangeFeed` puts them together."""
