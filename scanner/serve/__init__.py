"""`facescan serve`: the scanner as an HTTP service and a review page (the `[serve]` extra).

`server` loads the model and runs uvicorn; `app` is the Starlette app (routes, auth, errors);
`service` turns uploads into report rows through the batcher engine
(`scanner.engines.batcher`); `uploads` reads request bodies in memory; `metrics`, `openapi`
and `page/` are what their names say. `cli` and `options` import neither Starlette nor the
scanner's heavy modules, so `facescan --help` stays fast.
"""
