"""The orders service: takes orders, talks to catalog, payments, notifications."""
