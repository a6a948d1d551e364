"""Every piece of application state, under one typed key each (aiohttp AppKey)."""

from __future__ import annotations

from aiohttp import web

from lapnode.daemon.feed import FeedStats
from lapnode.daemon.manager import SubscriptionManager
from lapnode.daemon.node import Node
from lapnode.daemon.statements import MembershipGossip

NODE = web.AppKey("node", Node)
MANAGER = web.AppKey("manager", SubscriptionManager)
GOSSIP = web.AppKey("gossip", MembershipGossip)
FEEDS = web.AppKey("feeds", dict[bytes, FeedStats])
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
