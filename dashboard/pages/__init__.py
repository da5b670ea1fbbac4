"""The dashboard's pages, each registered with Dash's page registry by its module: the
desk (``home``, ``/``), the wall (``bigscreen``, ``/bigscreen``) and the command centre's
workbench (``workbench``, ``/workbench``)."""
