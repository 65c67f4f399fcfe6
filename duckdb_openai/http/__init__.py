"""The HTTP layer: one `Requester` per client (retries, the shared rate budget, error mapping, redaction)
over a pooled transport (aiohttp, or httpx for HTTP/2). It knows requests and bodies, not resources."""
