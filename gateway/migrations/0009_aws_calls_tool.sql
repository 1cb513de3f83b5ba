-- The MCP server's tools make AWS calls through the same stages as the proxy: a call a tool made
-- names the tool (its session id is then the MCP session's); a call through the proxy has none.
ALTER TABLE aws_calls ADD COLUMN IF NOT EXISTS tool text;
