"""The use cases: one function per operation that the CLI, the pages and the JSON API share.

The only layer that combines several packages in one operation (deliver the pending revocations,
then build a release; record a setting and let its revocation be queued; …). `cli`, `web` and `api`
parse their input, call one of these and render the result.
"""
