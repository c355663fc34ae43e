"""eval/metrics"""
