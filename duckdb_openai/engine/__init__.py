"""The engine: pages a resource's lists (from both ends), decodes bodies to Arrow under the API's
contract, fans out over many keys, keeps what cannot change (the cache), and runs it all on a client's
background loop. It reads resource declarations only; nothing here names a particular resource."""
