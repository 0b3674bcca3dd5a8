"""lr-serve: edits as an HTTP service on Ray Serve (ingress -> batching editor replicas).

`config` holds the settings and limits, `form` turns a multipart upload into an EditRequest,
`outcome` carries an edit's answer from the editor replica to the ingress, `app` builds the Ray
Serve application, `cli` is lr-serve. The batching itself is the engine's
(`Editor.edit_batch`); this package only feeds it.
"""
