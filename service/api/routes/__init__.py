"""service/api/routes"""
