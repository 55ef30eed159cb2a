"""Integration-test harness for the Alliance Pulse Janus plugin.

Modules:
  netns  -- a pair of network namespaces joined by a veth (ICE needs it)
  janus  -- a throwaway Janus instance (config folder, start, health, stop)
  api    -- asyncio Janus API clients (HTTP long-poll and WebSocket)
  peer   -- an aiortc participant with synthetic audio/video + data channel
  evh    -- an HTTP collector for Janus's sample event handler
  store  -- read-only queries on the plugin's SQLite store
  quality -- loss injection (nftables), stored samples/incidents, core and aiortc stats
"""
