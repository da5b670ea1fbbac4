"""The dashboard's pages, each registered with Dash's page registry by its module: the
desk (``home``, ``/``) and the wall (``bigscreen``, ``/bigscreen``)."""
