"""The model repository: which models and versions the server serves, read from ``--model`` and the folders
it names (``layout``), each loaded version with its own inference core (``versions``), the routes from a
request's (model, version) to it and live loading, swapping and unloading (``manager``), polling
(``poll``) and memory estimates (``memory``). A layer above the core and below the transports."""
