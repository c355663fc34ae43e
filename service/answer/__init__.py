"""service/answer"""
